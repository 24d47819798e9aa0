//! Names that end up in the XML: the domain name, disk target names, and the check
//! that a string can be carried by XML at all.

/// The name used when nothing usable is left of the source's.
const FALLBACK_NAME: &str = "ferry-guest";

/// libvirt stores a domain as `/etc/libvirt/qemu/NAME.xml`; keep NAME well under the
/// 255-byte file-name limit.
const MAX_NAME_BYTES: usize = 200;

/// Whether XML 1.0 can carry `c` at all: escaping cannot help with the rest (most C0
/// controls, surrogates, U+FFFE/U+FFFF), so they must never reach the writer.
pub(crate) fn xml_char_ok(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// Whether every character of `s` can be written as XML.
pub(crate) fn xml_str_ok(s: &str) -> bool {
    s.chars().all(xml_char_ok)
}

/// A libvirt-safe domain name made from a source's display name.
///
/// libvirt refuses `/` (the name becomes a file name) and newlines; other control
/// characters make `virsh list` unreadable and some cannot be written as XML. Each such
/// character becomes `-`, surrounding white space is trimmed, and a name with nothing
/// left becomes `ferry-guest`. XML metacharacters (`&<>'"`) are kept: the writer
/// escapes them.
pub fn sanitize_name(s: &str) -> String {
    let replaced: String = s
        .chars()
        .map(|c| {
            if c == '/' || c.is_control() || !xml_char_ok(c) {
                '-'
            } else {
                c
            }
        })
        .collect();
    let mut name = replaced.trim();
    if name.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name = name[..end].trim_end();
    }
    // A name made only of the replacement says nothing about the guest.
    if name.chars().all(|c| c == '-') {
        FALLBACK_NAME.to_string()
    } else {
        name.to_string()
    }
}

const ALPHABET: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";

/// The `index`-th disk name with `prefix`: `vda`…`vdz`, `vdaa`…, as libvirt counts
/// (`virIndexToDiskName`), so targets past the 26th stay valid and unique.
pub(crate) fn disk_target(prefix: &str, index: usize) -> String {
    let mut letters = Vec::new();
    let mut i = index;
    loop {
        letters.push(char::from(ALPHABET[i % 26]));
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    let mut name = String::from(prefix);
    name.extend(letters.iter().rev());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_metacharacters_but_lose_slashes_and_controls() {
        assert_eq!(
            sanitize_name("  web & <db> 'x' \"y\"  "),
            "web & <db> 'x' \"y\""
        );
        assert_eq!(sanitize_name("a/b\nc\u{7}d"), "a-b-c-d");
        assert_eq!(sanitize_name("tab\there"), "tab-here");
        assert_eq!(sanitize_name("\u{FFFE}x"), "-x");
    }

    #[test]
    fn empty_or_meaningless_names_fall_back() {
        assert_eq!(sanitize_name(""), "ferry-guest");
        assert_eq!(sanitize_name("   "), "ferry-guest");
        assert_eq!(sanitize_name("//\n"), "ferry-guest");
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary() {
        let name = sanitize_name(&"é".repeat(150));
        assert!(name.len() <= MAX_NAME_BYTES);
        assert_eq!(name, "é".repeat(100));
    }

    #[test]
    fn xml_chars() {
        assert!(xml_str_ok("a\tb\nc😀"));
        assert!(!xml_str_ok("a\u{1}b"));
        assert!(!xml_str_ok("\u{FFFF}"));
    }

    #[test]
    fn disk_targets_count_like_libvirt() {
        assert_eq!(disk_target("vd", 0), "vda");
        assert_eq!(disk_target("vd", 25), "vdz");
        assert_eq!(disk_target("vd", 26), "vdaa");
        assert_eq!(disk_target("sd", 27), "sdab");
        assert_eq!(disk_target("vd", 26 + 26 * 26), "vdaaa");
    }
}
