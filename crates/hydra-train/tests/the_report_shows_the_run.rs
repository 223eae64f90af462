//! `RUN/report.html` is one well-formed page that shows the run: its sections are there, the
//! per-class IoU table holds the latest validation's classes and values, every plot of the
//! folder and the latest panel are embedded (data URIs that decode to SVG and PNG), every link
//! points at a file that exists, and `hydra report` makes the same page from the folder
//! alone (elsewhere with `--out`, linking back by absolute paths). A folder that is not a run
//! is refused in one line.

mod common;

use std::path::Path;

use common::{assert_refused, hydra_env, scratch, text, tiny_config};

const VOID: &[&str] = &["meta", "img", "br", "hr", "link", "input"];

/// Check that every element is closed in order (void elements excepted); returns the tags.
fn check_nesting(page: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut tags = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("an unclosed <");
        let inner = &rest[..end];
        rest = &rest[end + 1..];
        if inner.starts_with('!') {
            continue;
        }
        let closing = inner.starts_with('/');
        let name: String = inner.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
        assert!(!name.is_empty(), "a tag without a name: <{inner}>");
        if closing {
            assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "</{name}> closes the wrong element");
        } else if !VOID.contains(&name.as_str()) {
            stack.push(name.clone());
        }
        tags.push(name);
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    tags
}

/// The values of attribute `attr` in the page.
fn attributes<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let key = format!(" {attr}=\"");
    page.match_indices(&key).map(|(i, _)| {
        let v = &page[i + key.len()..];
        &v[..v.find('"').unwrap()]
    }).collect()
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    } as u32;
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (k, &c)| n | val(c) << (18 - 6 * k));
        for k in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * k)) as u8);
        }
    }
    out
}

fn table_rows(page: &str, class: &str) -> Vec<Vec<String>> {
    let start = page.find(&format!("<table class=\"{class}\">")).unwrap_or_else(|| panic!("no {class} table"));
    let body = &page[start..start + page[start..].find("</table>").unwrap()];
    body.split("<tr>").skip(2).map(|r| r.split("<td>").skip(1).map(|c| c[..c.find("</td>").unwrap()].to_string()).collect()).collect()
}

fn check_links(page: &str, base: &Path) {
    for href in attributes(page, "href") {
        let p = if href.starts_with('/') { Path::new(href).to_path_buf() } else { base.join(href) };
        assert!(p.is_file(), "a link to a missing file: {href}");
    }
}

#[test]
fn the_page_shows_the_run_and_can_be_made_again() {
    let dir = scratch("report");
    let run = dir.join("run");
    let cfg = tiny_config(&dir, &run, "[eval]\nmax_depth = 10.0\n");
    let o = hydra_env(&["train", "--config", cfg.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("report: "), "training names its report");
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();

    let tags = check_nesting(&page);
    assert_eq!(tags.iter().filter(|t| *t == "html").count(), 2);
    for id in ["status", "metrics", "iou", "plots", "panels", "timings", "machine", "config"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no section {id}");
    }
    assert!(page.contains("3 of 3 epochs"), "status");

    // The IoU table is the latest validation's (plots/validation.json), class by class.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("plots/validation.json")).unwrap()).unwrap();
    let rows = table_rows(&page, "iou");
    let names = ["floor", "wall", "ceiling", "box", "sphere", "cylinder"];
    assert_eq!(rows.len(), names.len());
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row[1], names[k]);
        match v["metrics"]["segmentation"]["iou"][k].as_f64() {
            Some(x) => assert_eq!(row[2], format!("{x:.4}")),
            None => assert_eq!(row[2], "absent"),
        }
        let counts = &v["confusion"]["counts"];
        let true_pixels: u64 = (0..6).map(|c| counts[k * 6 + c].as_u64().unwrap()).sum();
        assert_eq!(row[4], true_pixels.to_string());
    }
    // The metrics table's latest column is the last epoch's validation.
    let last: serde_json::Value = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|r| r["kind"] == "epoch").last().unwrap();
    let metrics = table_rows(&page, "metrics");
    let miou = metrics.iter().find(|r| r[0] == "mIoU").expect("an mIoU row");
    assert_eq!(miou[2], format!("{:.4}", last["val"]["miou"].as_f64().unwrap()));
    let rmse = metrics.iter().find(|r| r[0] == "depth RMSE (m)").expect("an RMSE row");
    assert_eq!(rmse[2], format!("{:.4}", last["val"]["rmse"].as_f64().unwrap()));

    // Every plot of the folder is embedded as SVG, then the latest panel as PNG.
    let svgs = std::fs::read_dir(run.join("plots")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg")).count();
    assert!(svgs >= 10, "{svgs} plots");
    let srcs = attributes(&page, "src");
    assert_eq!(srcs.len(), svgs + 1);
    for (k, src) in srcs.iter().enumerate() {
        let (mime, data) = src.strip_prefix("data:").unwrap().split_once(";base64,").expect("a base64 data URI");
        let bytes = base64_decode(data);
        if k < svgs {
            assert_eq!(mime, "image/svg+xml");
            assert!(String::from_utf8(bytes).unwrap().starts_with("<svg"), "plot {k}");
        } else {
            assert_eq!(mime, "image/png");
            assert_eq!(bytes, std::fs::read(run.join("panels/epoch_0003.png")).unwrap(), "the latest panel");
        }
    }
    check_links(&page, &run);
    let machine = table_rows(&page, "machine");
    assert_eq!(machine.len(), 1, "one session");
    assert!(machine[0][2].starts_with("flex"), "{:?}", machine[0]);

    // The same page again from the folder alone; elsewhere, linking back by absolute paths.
    std::fs::remove_file(run.join("report.html")).unwrap();
    let o = hydra_env(&["report", run.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(std::fs::read_to_string(run.join("report.html")).unwrap(), page);
    let other = dir.join("elsewhere.html");
    let o = hydra_env(&["report", run.to_str().unwrap(), "--out", other.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let moved = std::fs::read_to_string(&other).unwrap();
    assert!(attributes(&moved, "href").iter().all(|h| h.starts_with('/')));
    check_links(&moved, &dir);

    // Not over the run's own files; not of a folder that is not a run.
    let o = hydra_env(&["report", run.to_str().unwrap(), "--out", run.join("metrics.jsonl").to_str().unwrap()], &[]);
    assert_refused(&o, &["metrics.jsonl"]);
    let o = hydra_env(&["report", dir.to_str().unwrap()], &[]);
    assert_refused(&o, &["not a hydra run folder"]);
}
