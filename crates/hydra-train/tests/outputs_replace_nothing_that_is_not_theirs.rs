//! Outputs replace nothing that is not theirs: a path naming a FIFO (or a device, a folder) is
//! refused, never renamed over; a symlink is written through to its file; no output replaces
//! one of the command's inputs; `synth` and `train` never write into a folder of other files.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Output;

use common::{fixtures, hydra_env, scratch, text, tiny_config};

fn hydra(args: &[&str]) -> Output {
    hydra_env(args, &[])
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mkfifo(p: &Path) {
    let st = std::process::Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success());
}

fn is_fifo(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

fn refused(o: &Output, needles: &[&str]) {
    common::assert_refused(o, needles);
}

#[test]
fn a_fifo_as_an_output_is_refused_and_stays_a_fifo() {
    let dir = scratch("out-fifo");
    let fifo = dir.join("result.json");
    mkfifo(&fifo);
    let o = hydra(&["bench", "synth", "--size", "32x32", "--warmup", "0", "--repeats", "1", "--json", s(&fifo)]);
    refused(&o, &[s(&fifo), "is a FIFO", "refusing to replace it"]);
    assert!(is_fifo(&fifo), "the FIFO was replaced");
    // Through a symlink to the FIFO: the same refusal, and both are left as they were.
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let o = hydra(&["bench", "synth", "--size", "32x32", "--warmup", "0", "--repeats", "1", "--json", s(&link)]);
    refused(&o, &["is a FIFO"]);
    assert!(is_fifo(&fifo) && std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // A folder as the output file.
    let o = hydra(&["bench", "synth", "--size", "32x32", "--warmup", "0", "--repeats", "1", "--json", s(&dir)]);
    refused(&o, &["is a folder"]);
}

#[test]
fn a_device_is_never_a_destination() {
    // Checked on the library function only: a regression must not replace /dev/null.
    let e = hydra_model::fsio::destination(Path::new("/dev/null")).unwrap_err();
    assert!(e.to_string().contains("is a character device"), "{e}");
    let e = hydra_model::fsio::write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
    assert_eq!(e.0, Path::new("/dev/null"));
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
}

#[test]
fn a_symlink_is_written_through_to_its_file() {
    let dir = scratch("out-link");
    let target = dir.join("real.json");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink("real.json", &link).unwrap();
    let o = hydra(&["bench", "synth", "--size", "32x32", "--warmup", "0", "--repeats", "1", "--json", s(&link)]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link itself was replaced");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert!(v["name"].as_str().unwrap().starts_with("synth"), "{v}");
}

#[test]
fn predict_never_writes_over_one_of_its_inputs() {
    let dir = scratch("out-over-input");
    let frame = fixtures().join("samples/nyud/000464.png");
    // `a.png` would produce `a_segm.png`, which is the second input.
    std::fs::copy(&frame, dir.join("a.png")).unwrap();
    std::fs::copy(&frame, dir.join("a_segm.png")).unwrap();
    let before = std::fs::read(dir.join("a_segm.png")).unwrap();
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let o = hydra(&["predict", "--weights", s(&ckpt), "--out", s(&dir), s(&dir.join("a.png")), s(&dir.join("a_segm.png"))]);
    refused(&o, &["a_segm.png", "refusing to overwrite an input"]);
    assert_eq!(std::fs::read(dir.join("a_segm.png")).unwrap(), before, "the input was changed");
    let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a.png", "a_segm.png"], "nothing was written");
    // A hard link to an input is the input too.
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::hard_link(dir.join("a.png"), out.join("b_depth.png")).unwrap();
    std::fs::copy(&frame, dir.join("b.png")).unwrap();
    let o = hydra(&["predict", "--weights", s(&ckpt), "--out", s(&out), s(&dir.join("a.png")), s(&dir.join("b.png"))]);
    refused(&o, &["b_depth.png", "a.png"]);
}

#[test]
fn export_and_eval_never_replace_their_inputs() {
    let dir = scratch("out-export");
    let w = dir.join("w.safetensors");
    let o = hydra(&["export", "--weights", s(&fixtures().join("pytorch/hydranet40_s0.ckpt")), "--out", s(&w)]);
    assert!(o.status.success(), "{}", text(&o).1);
    let before = std::fs::read(&w).unwrap();
    let o = hydra(&["export", "--weights", s(&w), "--out", s(&w)]);
    refused(&o, &["refusing to overwrite an input"]);
    assert_eq!(std::fs::read(&w).unwrap(), before);
    // eval --json naming the config it reads.
    let cfg = tiny_config(&dir, &dir.join("run"), "");
    let cfg_before = std::fs::read(&cfg).unwrap();
    let o = hydra(&["eval", "--config", s(&cfg), "--weights", s(&w), "--json", s(&cfg)]);
    refused(&o, &["refusing to overwrite an input"]);
    assert_eq!(std::fs::read(&cfg).unwrap(), cfg_before);
}

#[test]
fn synth_never_writes_into_an_existing_folder_of_files() {
    let dir = scratch("out-synth");
    let data = dir.join("scenes");
    let o = hydra(&["synth", "--out", s(&data), "--count", "2", "--size", "32x48"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let list = std::fs::read(data.join("list.txt")).unwrap();
    let o = hydra(&["synth", "--out", s(&data), "--count", "1", "--size", "64x64", "--seed", "9"]);
    refused(&o, &[s(&data), "is not empty", "refusing"]);
    assert_eq!(std::fs::read(data.join("list.txt")).unwrap(), list);
    assert_eq!(hydra_data::image_io::read_rgb(&data.join("rgb/000000.png")).unwrap().width, 48, "a scene was replaced");
}

#[test]
fn train_never_writes_into_a_foreign_or_unnamed_folder() {
    let dir = scratch("out-train");
    // A folder of the user's own files.
    let mine = dir.join("my-files");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), b"mine").unwrap();
    std::fs::write(mine.join("config.toml"), b"# my own config").unwrap();
    let cfg = tiny_config(&dir, &mine, "");
    let o = hydra(&["train", "--config", s(&cfg)]);
    refused(&o, &["notes.txt", "not a hydra run", "refusing to train into it"]);
    assert_eq!(std::fs::read(mine.join("config.toml")).unwrap(), b"# my own config");
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 2, "nothing was added");
    // An empty output.dir would be the working directory.
    let o = hydra(&["train", "--config", s(&cfg), "--set", "output.dir="]);
    refused(&o, &["output.dir = \"\"", "working directory"]);
    // A regular file as the run folder.
    let o = hydra(&["train", "--config", s(&cfg), "--set", &format!("output.dir={}", mine.join("notes.txt").display())]);
    refused(&o, &["is not a folder"]);
    assert_eq!(std::fs::read(mine.join("notes.txt")).unwrap(), b"mine");
}
