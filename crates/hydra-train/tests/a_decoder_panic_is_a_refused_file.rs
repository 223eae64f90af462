//! A hostile image that trips a panic inside a third-party decoder (fixtures/hostile/
//! jpeg_idct_panic.jpg, 1230 bytes, found by the coverage-guided fuzzer: an unwrap in
//! zune-jpeg's IDCT) is refused like any damaged image: one line naming the file, exit 1,
//! no "internal error", nothing written, in `predict` and in `data check`.

mod common;

use common::{assert_refused, fixtures, hydra_env, scratch};

#[test]
fn predict_and_data_check_refuse_the_file() {
    // The fuzzer's find, its minimised form (a third component with horizontal sampling 4,
    // panicking in the scalar IDCT instead) and a hand-made variant (sampling 2).
    for f in ["jpeg_idct_panic.jpg", "jpeg_sampling_panic_min.jpg", "jpeg_sampling_panic_h2.jpg"] {
        let e = hydra_data::image_io::decode_rgb(&std::fs::read(fixtures().join("hostile").join(f)).unwrap()).unwrap_err();
        assert!(e.contains("the decoder failed on this file"), "{f}: {e}");
    }
    let bad = fixtures().join("hostile/jpeg_idct_panic.jpg");
    let dir = scratch("decoder-panic");
    let out = dir.join("out");
    let ckpt = fixtures().join("pytorch/hydranet40_s0.ckpt");
    let o = hydra_env(&["predict", "--weights", ckpt.to_str().unwrap(), "--out", out.to_str().unwrap(), bad.to_str().unwrap()], &[]);
    assert_refused(&o, &["jpeg_idct_panic.jpg", "cannot decode image"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("internal error"));
    assert!(!out.exists(), "nothing written");
    // The same file inside a dataset: refused before training, naming the list line.
    let data = dir.join("data");
    for sub in ["rgb", "masks", "depth"] {
        std::fs::create_dir_all(data.join(sub)).unwrap();
    }
    std::fs::copy(&bad, data.join("rgb/a.jpg")).unwrap();
    std::fs::copy(fixtures().join("samples/nyud/segm_gt_000464.png"), data.join("masks/a.png")).unwrap();
    std::fs::copy(fixtures().join("samples/nyud/depth_gt_000464.png"), data.join("depth/a.png")).unwrap();
    std::fs::write(data.join("list.txt"), "rgb/a.jpg\tmasks/a.png\tdepth/a.png\n").unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, format!("[data.train]\nkind = \"nyud\"\nroot = \"{}\"\nlist = \"list.txt\"\n[output]\ndir = \"{}\"\n", data.display(), dir.join("run").display())).unwrap();
    let o = hydra_env(&["data", "check", "--config", cfg.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{err}");
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("a.jpg") && err.contains("cannot decode image") && !err.contains("internal error"), "{err}");
}
