//! Sorted half-open byte ranges `[start, end)`, merged as they come, with a cap on how many
//! are kept so that a badly fragmented terabyte filesystem cannot make the map huge.

/// Ranges pushed in ascending order of start.
pub(super) struct RangeList {
    ranges: Vec<(u64, u64)>,
    cap: usize,
    /// Gaps of at most this many bytes between ranges are filled (copied along) because
    /// the list reached `cap`; 0 while the map is exact.
    filled_gap: u64,
    first_fill: u64,
}

impl RangeList {
    /// `first_fill` is the gap filled the first time the list overflows `cap` (a
    /// filesystem block: filling less would not merge anything).
    pub(super) fn new(cap: usize, first_fill: u64) -> Self {
        RangeList {
            ranges: Vec::new(),
            cap: cap.max(2),
            filled_gap: 0,
            first_fill: first_fill.max(1),
        }
    }

    pub(super) fn push(&mut self, start: u64, end: u64) {
        if end <= start {
            return;
        }
        if let Some(last) = self.ranges.last_mut() {
            if start <= last.1.saturating_add(self.filled_gap) {
                last.1 = last.1.max(end);
                return;
            }
        }
        self.ranges.push((start, end));
        if self.ranges.len() > self.cap {
            self.coarsen();
        }
    }

    /// Doubles the gap filled until the list is at most half the cap, so coarsening
    /// happens a logarithmic number of times however many ranges arrive.
    fn coarsen(&mut self) {
        while self.ranges.len() > self.cap / 2 {
            self.filled_gap = self.filled_gap.saturating_mul(2).max(self.first_fill);
            let gap = self.filled_gap;
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
            for &(s, e) in &self.ranges {
                match merged.last_mut() {
                    Some(last) if s <= last.1.saturating_add(gap) => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            self.ranges = merged;
        }
    }

    pub(super) fn filled_gap(&self) -> u64 {
        self.filled_gap
    }

    pub(super) fn into_vec(self) -> Vec<(u64, u64)> {
        self.ranges
    }
}

/// Sorts `ranges` and merges the ones that overlap or touch.
pub(super) fn normalize(ranges: &mut Vec<(u64, u64)>) {
    ranges.retain(|&(s, e)| e > s);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges.iter() {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    *ranges = out;
}
