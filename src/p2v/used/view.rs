//! [`UsedOnly`]: a disk seen through its used-blocks map.

use std::sync::Arc;

use converters::source::clip_len;
use converters::{DiskSource, Extent, ExtentKind, LayerInfo};

use super::UsedMap;

/// The inner disk with every byte outside the map's ranges reading as zero and reported
/// as a `Zero` extent: the copy engine skips those bytes without reading them, and
/// `verify` compares an image with this view rather than with the raw disk (whose free
/// blocks hold old data the image deliberately lacks).
pub struct UsedOnly {
    inner: Arc<dyn DiskSource>,
    map: UsedMap,
}

impl UsedOnly {
    /// `map` should come from [`super::used_map`] on `inner`; ranges past the inner disk's
    /// end are dropped so reads never go past it.
    pub fn new(inner: Arc<dyn DiskSource>, mut map: UsedMap) -> Self {
        let size = inner.size();
        map.ranges.retain_mut(|r| {
            r.1 = r.1.min(size);
            r.0 < r.1
        });
        UsedOnly { inner, map }
    }

    pub fn map(&self) -> &UsedMap {
        &self.map
    }

    /// Index of the first range that ends after `offset`.
    fn first_after(&self, offset: u64) -> usize {
        self.map.ranges.partition_point(|&(_, end)| end <= offset)
    }
}

impl DiskSource for UsedOnly {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> converters::Result<()> {
        buf.fill(0);
        let end = offset.saturating_add(buf.len() as u64);
        for &(a, b) in &self.map.ranges[self.first_after(offset)..] {
            if a >= end {
                break;
            }
            let (from, to) = (a.max(offset), b.min(end));
            let lo = usize::try_from(from - offset).unwrap_or(usize::MAX);
            let hi = usize::try_from(to - offset).unwrap_or(usize::MAX);
            if let Some(part) = buf.get_mut(lo..hi) {
                self.inner.read_exact_at(part, from)?;
            }
        }
        Ok(())
    }

    fn extent_at(&self, offset: u64, max_len: u64) -> converters::Result<Extent> {
        let size = self.size();
        let len = clip_len(offset, max_len, size);
        if len == 0 {
            let path = self
                .inner
                .layers()
                .first()
                .map(|l| l.path.clone())
                .unwrap_or_default();
            return Err(converters::Error::invalid_request(
                path,
                format!("extent requested at {offset:#x}, past the end of the used-blocks view"),
            ));
        }
        match self.map.ranges.get(self.first_after(offset)) {
            // Inside a range: the inner map decides, clipped to the range.
            Some(&(a, b)) if a <= offset => {
                let want = len.min(b - offset);
                let mut e = self.inner.extent_at(offset, want)?;
                e.len = e.len.min(want);
                Ok(e)
            }
            Some(&(a, _)) => Ok(Extent {
                offset,
                len: len.min(a - offset),
                kind: ExtentKind::Zero,
            }),
            None => Ok(Extent {
                offset,
                len,
                kind: ExtentKind::Zero,
            }),
        }
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let mut layers = self.inner.layers();
        if let Some(top) = layers.first_mut() {
            let note = format!(
                "used blocks only: {} of {} bytes",
                self.map.used_bytes, self.map.disk_size
            );
            top.subformat = Some(match top.subformat.take() {
                Some(s) => format!("{s}; {note}"),
                None => note,
            });
        }
        layers
    }
}
