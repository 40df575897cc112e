#!/usr/bin/env bash
# Makes the bundled sample media and manifest.json. Run once by a developer (needs Debian's ffmpeg
# and python3); the outputs are committed, so tests never need ffmpeg.
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
export TZ=UTC

# A WhatsApp voice note: Ogg Opus, mono, 16 kHz.
ff -f lavfi -i "sine=frequency=330:sample_rate=48000:duration=3.2" -ac 1 -ar 16000 -c:a libopus -b:a 16k -map_metadata -1 voice.ogg
ff -f lavfi -i "sine=frequency=440:duration=4" -ac 1 -ar 22050 -c:a libmp3lame -b:a 32k -map_metadata -1 audio.mp3
ff -f lavfi -i "sine=frequency=550:duration=2.5" -ac 1 -ar 22050 -c:a aac -b:a 24k -map_metadata -1 -movflags +faststart audio.m4a
ff -f lavfi -i "sine=frequency=660:duration=2" -ac 1 -ar 22050 -c:a aac -b:a 24k -f adts audio.aac
# Video with and without an audio track (WhatsApp allows silent video and GIF-as-MP4).
ff -f lavfi -i "testsrc=size=160x120:rate=10:duration=2" -f lavfi -i "sine=frequency=440:duration=2" \
   -c:v libx264 -pix_fmt yuv420p -crf 35 -c:a aac -b:a 24k -ac 1 -shortest -map_metadata -1 -movflags +faststart video.mp4
ff -f lavfi -i "testsrc=size=160x120:rate=10:duration=1.5" -c:v libx264 -pix_fmt yuv420p -crf 35 -an \
   -map_metadata -1 -movflags +faststart video-silent.mp4
ff -f lavfi -i "testsrc=size=176x144:rate=10:duration=2" -c:v libx264 -pix_fmt yuv420p -crf 35 -an -map_metadata -1 -f 3gp video.3gp
ff -f lavfi -i "testsrc=size=320x240:duration=1" -frames:v 1 -q:v 8 image.jpg
ff -f lavfi -i "testsrc=size=200x150:duration=1" -frames:v 1 image.png
ff -f lavfi -i "testsrc=size=512x512:duration=1" -frames:v 1 -c:v libwebp -quality 20 sticker.webp

python3 - <<'PY'
import hashlib, json, os, random, subprocess

# AMR-NB: ffmpeg has no AMR encoder here, so write the format directly: the "#!AMR\n" magic, then
# 150 frames of mode 7 (12.2 kbit/s: a 1-byte header + 31 bytes), 20 ms each = 3.0 s.
rng = random.Random(7)
with open("voice.amr", "wb") as f:
    f.write(b"#!AMR\n")
    for _ in range(150):
        f.write(bytes([0x3C]) + bytes(rng.getrandbits(8) for _ in range(31)))

# A one-page PDF, written by hand with a correct xref table.
objs = [
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    None,
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
]
stream = b"BT /F1 18 Tf 20 45 Td (Vertrag 4711) Tj ET"
objs[3] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
out = bytearray(b"%PDF-1.4\n")
offsets = []
for i, o in enumerate(objs, 1):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for off in offsets:
    out += b"%010d 00000 n \n" % off
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open("document.pdf", "wb").write(bytes(out))

def adts_duration(name):
    # ADTS has no duration field and ffprobe estimates it from the bitrate; count the frames.
    data = open(name, "rb").read()
    i = frames = 0
    rate = None
    rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]
    while i + 7 <= len(data) and data[i] == 0xFF and data[i + 1] & 0xF0 == 0xF0:
        rate = rates[(data[i + 2] >> 2) & 0x0F]
        length = ((data[i + 3] & 0x03) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        frames += 1
        i += length
    return round(frames * 1024 / rate, 3)

def probe(name):
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=width,height",
                        "-of", "json", name], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    d = info.get("format", {}).get("duration")
    dims = next(((s["width"], s["height"]) for s in info.get("streams", []) if "width" in s), None)
    return (round(float(d), 3) if d else None), dims

samples = [
    ("voice.ogg", "voice", "audio/ogg; codecs=opus", True),
    ("voice.amr", "voice", "audio/amr", True),
    ("audio.mp3", "audio", "audio/mpeg", True),
    ("audio.m4a", "audio", "audio/mp4", True),
    ("audio.aac", "audio", "audio/aac", True),
    ("video.mp4", "video", "video/mp4", True),
    ("video-silent.mp4", "video", "video/mp4", True),
    ("video.3gp", "video", "video/3gpp", True),
    ("image.jpg", "image", "image/jpeg", False),
    ("image.png", "image", "image/png", False),
    ("sticker.webp", "sticker", "image/webp", False),
    ("document.pdf", "document", "application/pdf", False),
]
manifest = []
for name, kind, mime, timed in samples:
    data = open(name, "rb").read()
    duration, dims = probe(name) if name != "document.pdf" else (None, None)
    if name == "voice.amr":
        duration = 150 * 0.020  # the frames written above; ffprobe estimates from the bitrate
    if name == "audio.aac":
        duration = adts_duration(name)
    entry = {"file": name, "kind": kind, "mime_type": mime, "size": len(data),
             "sha256": hashlib.sha256(data).hexdigest(),
             "duration_seconds": duration if timed else None}
    if dims and not timed:
        entry["width"], entry["height"] = dims
    manifest.append(entry)
    assert len(data) < 100_000, name
json.dump(manifest, open("manifest.json", "w"), indent=2)
open("manifest.json", "a").write("\n")
PY
