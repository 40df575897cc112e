//! AMR (`audio/amr`, RFC 4867 storage format) duration by walking frames: no Rust crate reads
//! AMR, and the format is simple. Every frame is 20 ms; its size follows from the frame type in
//! its one-byte header.

/// Narrowband speech bytes per frame type 0..=15 (after the header byte); `None` = reserved.
#[rustfmt::skip]
const NB_SIZES: [Option<usize>; 16] = [
    Some(12), Some(13), Some(15), Some(17), Some(19), Some(20), Some(26), Some(31),
    Some(5), None, None, None, None, None, None, Some(0),
];
/// Wideband speech bytes per frame type 0..=15; 14 = speech lost, 15 = no data.
#[rustfmt::skip]
const WB_SIZES: [Option<usize>; 16] = [
    Some(17), Some(23), Some(32), Some(36), Some(40), Some(46), Some(50), Some(58),
    Some(60), Some(5), None, None, None, None, Some(0), Some(0),
];

const NB_MAGIC: &[u8] = b"#!AMR\n";
const WB_MAGIC: &[u8] = b"#!AMR-WB\n";
pub const FRAME_SECONDS: f64 = 0.020;

/// What walking the frames found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmrInfo {
    pub wideband: bool,
    /// Complete frames.
    pub frames: u64,
    /// Whether the file ended inside a frame or hit a reserved frame type (the count stops there).
    pub truncated: bool,
}

impl AmrInfo {
    pub fn duration_seconds(&self) -> f64 {
        self.frames as f64 * FRAME_SECONDS
    }
}

/// Walks an AMR file; `None` if it does not start with an AMR magic.
pub fn walk(data: &[u8]) -> Option<AmrInfo> {
    let (wideband, sizes, mut pos) = if data.starts_with(WB_MAGIC) {
        (true, &WB_SIZES, WB_MAGIC.len())
    } else if data.starts_with(NB_MAGIC) {
        (false, &NB_SIZES, NB_MAGIC.len())
    } else {
        return None;
    };
    let mut frames = 0u64;
    let mut truncated = false;
    while pos < data.len() {
        let frame_type = usize::from((data[pos] >> 3) & 0x0F);
        let Some(size) = sizes[frame_type] else {
            truncated = true;
            break;
        };
        let end = pos + 1 + size;
        if end > data.len() {
            truncated = true;
            break;
        }
        frames += 1;
        pos = end;
    }
    Some(AmrInfo {
        wideband,
        frames,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(magic: &[u8], frame_types: &[u8], sizes: &[Option<usize>; 16]) -> Vec<u8> {
        let mut out = magic.to_vec();
        for &ft in frame_types {
            out.push(ft << 3 | 0x04);
            out.extend(std::iter::repeat_n(0xA5, sizes[usize::from(ft)].unwrap()));
        }
        out
    }

    #[test]
    fn counts_narrowband_frames() {
        let data = file(NB_MAGIC, &[7; 150], &NB_SIZES);
        let info = walk(&data).unwrap();
        assert_eq!(
            info,
            AmrInfo {
                wideband: false,
                frames: 150,
                truncated: false
            }
        );
        assert!((info.duration_seconds() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn counts_wideband_and_mixed_modes() {
        let data = file(WB_MAGIC, &[8, 0, 9, 15, 2], &WB_SIZES);
        assert_eq!(walk(&data).unwrap().frames, 5);
        assert!(walk(&data).unwrap().wideband);
    }

    #[test]
    fn truncation_and_reserved_types_stop_the_count() {
        let mut data = file(NB_MAGIC, &[7, 7, 7], &NB_SIZES);
        data.truncate(data.len() - 1);
        assert_eq!(
            walk(&data).unwrap(),
            AmrInfo {
                wideband: false,
                frames: 2,
                truncated: true
            }
        );
        let mut data = file(NB_MAGIC, &[0, 1], &NB_SIZES);
        data.push(10 << 3); // reserved frame type
        data.extend([0; 40]);
        assert_eq!(
            walk(&data).unwrap(),
            AmrInfo {
                wideband: false,
                frames: 2,
                truncated: true
            }
        );
    }

    #[test]
    fn not_amr() {
        assert_eq!(walk(b"OggS\0\x02"), None);
        assert_eq!(walk(b""), None);
        assert_eq!(walk(b"#!AMR\n").unwrap().frames, 0);
    }

    #[test]
    fn the_bundled_sample_is_three_seconds() {
        let data = include_bytes!("../../../sandbox/samples/voice.amr");
        let info = walk(data).unwrap();
        assert_eq!((info.frames, info.truncated), (150, false));
    }

    proptest! {
        #[test]
        fn any_sequence_of_valid_frames_is_counted_exactly(
            types in proptest::collection::vec(prop_oneof![0u8..=8, Just(15u8)], 0..400),
            wb in any::<bool>(),
        ) {
            let (magic, sizes) = if wb { (WB_MAGIC, &WB_SIZES) } else { (NB_MAGIC, &NB_SIZES) };
            let types: Vec<u8> = types.into_iter().filter(|t| sizes[usize::from(*t)].is_some()).collect();
            let info = walk(&file(magic, &types, sizes)).unwrap();
            prop_assert_eq!(info.frames, types.len() as u64);
            prop_assert!(!info.truncated);
            prop_assert_eq!(info.wideband, wb);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_never_overcount(tail in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut data = NB_MAGIC.to_vec();
            data.extend(&tail);
            let info = walk(&data).unwrap();
            // Every counted frame takes at least its header byte.
            prop_assert!(info.frames <= tail.len() as u64);
        }
    }
}
