//! TensorBoard event files in `RUN/tb/` decode as TensorBoard reads them: each record's
//! length and data carry a valid masked CRC-32C, each data is an `Event` protobuf, and the
//! scalars are the values metrics.jsonl logs, at the same steps. A resumed run's new file
//! starts with a session restart at the step it resumed from. (The decoder here is written
//! from the format's description, independently of hydra's writer.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{hydra_env, scratch, text, tiny_config};

/// Castagnoli CRC, bit by bit (reflected polynomial 0x82F63B78), then TensorBoard's mask.
fn masked_crc(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    let crc = !crc;
    ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8)
}

fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()), masked_crc(len_bytes), "length CRC at {at}");
        let data = &bytes[at + 12..at + 12 + len];
        assert_eq!(u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap()), masked_crc(data), "data CRC at {at}");
        out.push(data.to_vec());
        at += 16 + len;
    }
    out
}

/// Protobuf fields of a message: (field number, wire type, value bytes or varint).
fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>, u64)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let x = b[0];
            *b = &b[1..];
            v |= ((x & 0x7f) as u64) << shift;
            if x < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let k = varint(&mut b);
        let (field, wire) = (k >> 3, (k & 7) as u8);
        match wire {
            0 => out.push((field, wire, Vec::new(), varint(&mut b))),
            1 => {
                out.push((field, wire, b[..8].to_vec(), 0));
                b = &b[8..];
            }
            2 => {
                let n = varint(&mut b) as usize;
                out.push((field, wire, b[..n].to_vec(), 0));
                b = &b[n..];
            }
            5 => {
                out.push((field, wire, b[..4].to_vec(), 0));
                b = &b[4..];
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

#[derive(Debug, Default)]
struct Event {
    step: u64,
    file_version: Option<String>,
    scalars: BTreeMap<String, f32>,
    texts: BTreeMap<String, String>,
    /// tag → (height, width, colorspace, encoded image).
    images: BTreeMap<String, (u64, u64, u64, Vec<u8>)>,
    session_start: bool,
}

fn decode(data: &[u8]) -> Event {
    let mut e = Event::default();
    for (f, _, bytes, v) in fields(data) {
        match f {
            1 => assert!(f64::from_le_bytes(bytes.try_into().unwrap()) > 1.6e9, "wall time"),
            2 => e.step = v,
            3 => e.file_version = Some(String::from_utf8(bytes).unwrap()),
            5 => {
                for (_, _, value, _) in fields(&bytes) {
                    let vf = fields(&value);
                    let tag = String::from_utf8(vf.iter().find(|x| x.0 == 1).unwrap().2.clone()).unwrap();
                    if let Some(tensor) = vf.iter().find(|x| x.0 == 8) {
                        // TensorProto: dtype 7 (string), string_val = 8.
                        let tf = fields(&tensor.2);
                        assert_eq!(tf.iter().find(|x| x.0 == 1).unwrap().3, 7);
                        e.texts.insert(tag, String::from_utf8(tf.iter().find(|x| x.0 == 8).unwrap().2.clone()).unwrap());
                        continue;
                    }
                    if let Some(image) = vf.iter().find(|x| x.0 == 4) {
                        // Summary.Image: height 1, width 2, colorspace 3, encoded_image_string 4.
                        let imf = fields(&image.2);
                        let int = |k: u64| imf.iter().find(|x| x.0 == k).unwrap().3;
                        let png = imf.iter().find(|x| x.0 == 4).unwrap().2.clone();
                        e.images.insert(tag, (int(1), int(2), int(3), png));
                        continue;
                    }
                    let v = f32::from_le_bytes(vf.iter().find(|x| x.0 == 2).unwrap().2.clone().try_into().unwrap());
                    e.scalars.insert(tag, v);
                }
            }
            6 => e.session_start = fields(&bytes).iter().any(|x| x.0 == 1 && x.3 == 1),
            _ => {}
        }
    }
    e
}

fn event_files(run: &Path) -> Vec<Vec<Event>> {
    let mut paths: Vec<_> = std::fs::read_dir(run.join("tb")).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.iter().map(|p| records(&std::fs::read(p).unwrap()).iter().map(|r| decode(r)).collect()).collect()
}

#[test]
fn scalars_match_the_logs_and_a_resume_restarts_the_session() {
    let dir = scratch("tensorboard");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "");
    let c = cfg.to_str().unwrap();
    let o = hydra_env(&["train", "--config", c, "--stop-after-epochs", "2"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = hydra_env(&["train", "--config", c, "--resume"], &[]);
    assert!(o.status.success(), "{}", text(&o).1);

    let files = event_files(&run);
    assert_eq!(files.len(), 2, "one event file per invocation");
    assert_eq!(files[0][0].file_version.as_deref(), Some("brain.Event:2"));
    assert!(files[1][1].session_start, "the resumed file restarts the session");
    let config = files[0].iter().find_map(|e| e.texts.get("config")).expect("the config as text");
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert_eq!(config.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>(), saved.lines().collect::<Vec<_>>());
    let log: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(files[1][1].step, log.iter().filter(|v| v["kind"] == "epoch").nth(1).unwrap()["iteration"].as_u64().unwrap());

    let events: Vec<&Event> = files.iter().flatten().collect();
    let mut iters = 0;
    for v in &log {
        let step = v["iteration"].as_u64().unwrap();
        if v["kind"] == "iter" {
            let e = events.iter().find(|e| e.step == step && e.scalars.contains_key("train/loss")).expect("an event per logged iteration");
            assert_eq!(e.scalars["train/loss"], v["loss"].as_f64().unwrap() as f32);
            assert_eq!(e.scalars["train/loss_depth"], v["losses"]["depth"].as_f64().unwrap() as f32);
            assert_eq!(e.scalars["lr/decoder"], v["lr_decoder"].as_f64().unwrap() as f32);
            iters += 1;
        } else {
            let e = events.iter().find(|e| e.step == step && e.scalars.contains_key("epoch/train/loss")).expect("an event per epoch");
            assert_eq!(e.scalars["epoch/train/loss"], v["train"]["loss"].as_f64().unwrap() as f32);
            if let Some(m) = v["val"]["miou"].as_f64() {
                assert_eq!(e.scalars["epoch/val/miou"], m as f32);
                assert_eq!(e.scalars["epoch/val/rmse"], v["val"]["rmse"].as_f64().unwrap() as f32);
            }
        }
    }
    assert_eq!(iters, 12, "3 epochs × 4 iterations, every one logged");

    // Each validation's prediction panel is an image at the epoch's step: the PNG written to
    // RUN/panels/, of the size the event states.
    let mut panels = 0;
    for v in log.iter().filter(|v| v["kind"] == "epoch" && v.get("val").is_some()) {
        let step = v["iteration"].as_u64().unwrap();
        let e = events.iter().find(|e| e.step == step && e.images.contains_key("val/panels")).expect("a panel image per validation");
        let (h, w, colorspace, png) = &e.images["val/panels"];
        assert_eq!(*colorspace, 3, "RGB");
        let img = hydra_data::image_io::decode_rgb(png).unwrap();
        assert_eq!((img.height as u64, img.width as u64), (*h, *w));
        let file = run.join("panels").join(format!("epoch_{:04}.png", v["epoch"].as_u64().unwrap()));
        assert_eq!(&std::fs::read(&file).unwrap(), png, "{}", file.display());
        panels += 1;
    }
    assert_eq!(panels, 3, "validated every epoch");
}
