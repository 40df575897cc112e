//! Whatever a customer (or an attacker) sends as a file: the sniffer, the AMR frame walker, the
//! ADTS prober and the full inspection (lofty, mp4parse, image size) must return, not panic or
//! hang, on any bytes.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use wa2crm_media::probe;

fuzz_target!(|data: &[u8]| {
    let _ = probe::sniff(data);
    let _ = probe::amr::walk(data);
    let _ = probe::adts::duration_seconds(data);
    // The inspection reads a spooled file, as in the pipeline.
    let path = std::env::temp_dir().join(format!("wa2crm-fuzz-{}", std::process::id()));
    if let Ok(mut f) = std::fs::File::create(&path)
        && f.write_all(data).is_ok()
    {
        for declared in [
            None,
            Some("audio/ogg"),
            Some("video/mp4"),
            Some("audio/amr"),
        ] {
            let i = probe::inspect_blocking(&path, declared);
            if let Some(d) = i.duration_seconds {
                assert!(d.is_finite() && d >= 0.0, "duration {d}");
            }
        }
    }
});
