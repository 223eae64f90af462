//! TensorBoard event files (`RUN/tb/events.out.tfevents.*`), written as a training observer:
//! every logged iteration's losses, task weights, learning rates and speed, and every epoch's
//! record (training means, validation metrics), as scalars at the run's global step.
//!
//! The format: a sequence of records `u64 length | u32 masked CRC-32C of the length | data |
//! u32 masked CRC-32C of the data` (little-endian), each `data` a serialised `Event`
//! protobuf (`wall_time = 1` double, `step = 2` int64, `file_version = 3` string,
//! `summary = 5` message, `session_log = 6` message). A `Summary` holds repeated `value = 1`
//! messages of `tag = 1` string and `simple_value = 2` float (or, for the resolved config
//! as text, `tensor = 8` with `metadata = 9` naming the text plugin). A resumed run writes a new
//! file that starts with `SessionLog { status = START }` at the step it resumed from, which
//! makes TensorBoard drop the older files' events after that step.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::observer::{EpochEvent, IterationEvent, Observer, ValidationEvent};
use crate::train::TrainError;

/// The CRC-32C of `data`, masked as TensorBoard's record format masks it.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint(((field as u64) << 3) | wire as u64, out);
}

fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// What an event carries besides its time and step.
pub enum Payload<'a> {
    FileVersion(&'a str),
    /// `(tag, value)` scalars.
    Scalars(&'a [(String, f32)]),
    /// A session restarted at this step (TensorBoard purges later events of older files).
    SessionStart,
    /// `(tag, text)` for TensorBoard's text plugin (Markdown).
    Text(&'a str, &'a str),
    /// An RGB image for TensorBoard's images plugin: tag, PNG bytes, width, height.
    Image { tag: &'a str, png: &'a [u8], width: u32, height: u32 },
}

/// A serialised `Event`.
pub fn event(wall_time: f64, step: i64, payload: &Payload<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    key(1, 1, &mut out);
    out.extend_from_slice(&wall_time.to_le_bytes());
    key(2, 0, &mut out);
    varint(step as u64, &mut out);
    match payload {
        Payload::FileVersion(v) => bytes_field(3, v.as_bytes(), &mut out),
        Payload::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, v) in values.iter() {
                let mut value = Vec::new();
                bytes_field(1, tag.as_bytes(), &mut value);
                key(2, 5, &mut value);
                value.extend_from_slice(&v.to_le_bytes());
                bytes_field(1, &value, &mut summary);
            }
            bytes_field(5, &summary, &mut out);
        }
        Payload::Text(tag, text) => {
            // Value { tag = 1, tensor = 8: TensorProto { dtype = 1: DT_STRING (7),
            // tensor_shape = 2: {}, string_val = 8 }, metadata = 9: SummaryMetadata {
            // plugin_data = 1: PluginData { plugin_name = 1: "text" } } }
            let mut tensor = Vec::new();
            key(1, 0, &mut tensor);
            varint(7, &mut tensor);
            bytes_field(2, &[], &mut tensor);
            bytes_field(8, text.as_bytes(), &mut tensor);
            let mut plugin = Vec::new();
            bytes_field(1, b"text", &mut plugin);
            let mut metadata = Vec::new();
            bytes_field(1, &plugin, &mut metadata);
            let mut value = Vec::new();
            bytes_field(1, tag.as_bytes(), &mut value);
            bytes_field(8, &tensor, &mut value);
            bytes_field(9, &metadata, &mut value);
            let mut summary = Vec::new();
            bytes_field(1, &value, &mut summary);
            bytes_field(5, &summary, &mut out);
        }
        Payload::Image { tag, png, width, height } => {
            // Value { tag = 1, image = 4: Image { height = 1, width = 2, colorspace = 3 (3 =
            // RGB), encoded_image_string = 4 } }
            let mut image = Vec::new();
            key(1, 0, &mut image);
            varint(*height as u64, &mut image);
            key(2, 0, &mut image);
            varint(*width as u64, &mut image);
            key(3, 0, &mut image);
            varint(3, &mut image);
            bytes_field(4, png, &mut image);
            let mut value = Vec::new();
            bytes_field(1, tag.as_bytes(), &mut value);
            bytes_field(4, &image, &mut value);
            let mut summary = Vec::new();
            bytes_field(1, &value, &mut summary);
            bytes_field(5, &summary, &mut out);
        }
        Payload::SessionStart => {
            let mut log = Vec::new();
            key(1, 0, &mut log);
            varint(1, &mut log); // SessionLog.START
            bytes_field(6, &log, &mut out);
        }
    }
    out
}

/// One record of an event file.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The run's TensorBoard log, an observer of training.
pub struct TensorBoard {
    path: PathBuf,
    file: File,
}

impl TensorBoard {
    /// A new event file in `run_dir/tb/`; when resuming at `resumed_at`, it starts by telling
    /// TensorBoard to drop what older files logged after that step. The resolved
    /// configuration `config_toml` is logged as text (tag `config`).
    pub fn open(run_dir: &Path, resumed_at: Option<u64>, config_toml: &str) -> Result<Self, TrainError> {
        let dir = run_dir.join("tb");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| TrainError::Io { path: p, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let host = crate::run_info::host();
        let path = dir.join(format!("events.out.tfevents.{}.{host}.{}", now() as u64, std::process::id()));
        let dest = hydra_model::fsio::destination(&path).map_err(io(&path))?;
        let file = std::fs::OpenOptions::new().create_new(true).write(true).open(&dest).map_err(io(&path))?;
        let mut tb = Self { path, file };
        tb.write(0, &Payload::FileVersion("brain.Event:2"))?;
        if let Some(step) = resumed_at {
            tb.write(step as i64, &Payload::SessionStart)?;
        }
        // Markdown: the TOML as a code block (indented by four spaces).
        let text: String = config_toml.lines().map(|l| format!("    {l}\n")).collect();
        tb.write(resumed_at.unwrap_or(0) as i64, &Payload::Text("config", &text))?;
        Ok(tb)
    }

    fn write(&mut self, step: i64, payload: &Payload<'_>) -> Result<(), TrainError> {
        let r = record(&event(now(), step, payload));
        self.file.write_all(&r).map_err(|source| TrainError::Io { path: self.path.clone(), source })
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Observer for TensorBoard {
    fn iteration(&mut self, e: &IterationEvent<'_>) -> Result<(), TrainError> {
        if !e.logged {
            return Ok(());
        }
        let mut values = vec![("train/loss".to_string(), e.total as f32)];
        values.extend(e.losses.iter().map(|(t, v)| (format!("train/loss_{}", t.key()), *v as f32)));
        values.extend(e.weights.iter().map(|(t, v)| (format!("weights/{}", t.key()), *v as f32)));
        values.push(("lr/encoder".into(), e.lr_encoder as f32));
        values.push(("lr/decoder".into(), e.lr_decoder as f32));
        values.push(("speed/images_per_s".into(), e.images_per_s as f32));
        values.extend(e.grad_norms.iter().map(|(t, v)| (format!("conflict/grad_norm_{}", t.key()), *v as f32)));
        values.extend(e.grad_cosines.iter().map(|(k, v)| (format!("conflict/cosine_{}", k.replace('/', "_")), *v as f32)));
        self.write(e.iteration as i64, &Payload::Scalars(&values))
    }

    fn validation(&mut self, e: &ValidationEvent<'_>) -> Result<(), TrainError> {
        let Some(png) = e.panel else { return Ok(()) };
        // The size from the PNG's IHDR chunk (bytes 16..24).
        let (width, height) = match png.get(16..24) {
            Some(b) => (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
            None => return Ok(()),
        };
        self.write(e.iteration as i64, &Payload::Image { tag: "val/panels", png, width, height })
    }

    fn epoch_end(&mut self, e: &EpochEvent<'_>) -> Result<(), TrainError> {
        let step = e.record["iteration"].as_i64().unwrap_or(0);
        let mut numbers = Vec::new();
        for part in ["train", "val", "weights"] {
            if let Some(v) = e.record.get(part) {
                crate::runlog::flatten(v, &format!("epoch/{part}"), '/', &mut numbers);
            }
        }
        let mut values: Vec<(String, f32)> = numbers.into_iter().map(|(k, v)| (k, v as f32)).collect();
        if let Some(f) = e.record["lr_factor"].as_f64() {
            values.push(("epoch/lr_factor".into(), f as f32));
        }
        self.write(step, &Payload::Scalars(&values))?;
        self.file.flush().map_err(|source| TrainError::Io { path: self.path.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_the_reference_value() {
        // CRC-32C("123456789") = 0xE3069283 (the standard check value); masked by hand:
        // rotate right 15, add 0xa282ead8.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc32c(b"123456789"), 0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn varints_are_protobufs() {
        let mut v = Vec::new();
        varint(300, &mut v);
        assert_eq!(v, [0xac, 0x02]);
    }
}
