//! The figures show the numbers they are given: line charts carry their title, axis names
//! and a legend entry per series and draw each series in its colour; the IoU bars are as long
//! as the values; the confusion heat map's cells have the colours of the row-normalised
//! values; prediction panels put each sample's own pixels, classes and depths in the right
//! tiles; the run's chart list maps its records to the right series.

use hydra_data::batch::collate;
use hydra_data::image_io::{decode_rgb, png_text, Plane, RgbImage};
use hydra_data::palette::Palette;
use hydra_data::sample::Sample;
use hydra_train::colormap::turbo;
use hydra_train::panels::{render, tile_size, PanelSample};
use hydra_train::plots::{cell_color, line_charts, png, svg, BarChart, HeatMap, LineChart, Series, COLORS};
use serde_json::json;

fn count(img: &RgbImage, c: [u8; 3]) -> usize {
    img.data.chunks_exact(3).filter(|p| *p == c).count()
}

/// The trimmed contents of the SVG's `<text>` elements.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text").skip(1).map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim().to_string()).collect()
}

fn has_texts(svg: &str, needles: &[&str]) {
    let texts = svg_texts(svg);
    for n in needles {
        assert!(texts.iter().any(|t| t == n), "SVG lacks the text {n:?}: {texts:?}");
    }
}

fn rgb_of(c: plotters::style::RGBColor) -> [u8; 3] {
    [c.0, c.1, c.2]
}

#[test]
fn a_line_chart_has_its_title_axes_legend_and_series() {
    let chart = LineChart {
        title: "Loss: training and validation".into(),
        x_label: "epoch".into(),
        y_label: "loss (weighted)".into(),
        series: vec![
            Series::line("training", vec![(1.0, 3.0), (2.0, 2.0), (3.0, 1.5), (4.0, 1.2)]),
            Series::marked("validation", vec![(2.0, 2.5), (4.0, 1.9)]),
            Series::line("empty", vec![(1.0, f64::NAN)]),
        ],
    };
    let text = svg(&chart).unwrap();
    has_texts(&text, &["Loss: training and validation", "epoch", "loss (weighted)", "training", "validation"]);
    assert!(!svg_texts(&text).iter().any(|t| t == "empty"), "a series without finite points has no legend entry");
    let bytes = png(&chart, &chart.title).unwrap();
    assert!(png_text(&bytes).unwrap().contains(&("title".to_string(), chart.title.clone())));
    let img = decode_rgb(&bytes).unwrap();
    assert_eq!((img.width, img.height), (800, 450));
    let (blue, orange) = (count(&img, rgb_of(COLORS[0])), count(&img, rgb_of(COLORS[1])));
    // A 2-px line across most of the 700-px plot area; markers add to the second.
    assert!(blue > 900, "training curve: {blue} pixels");
    assert!(orange > 900, "validation curve and markers: {orange} pixels");
    assert_eq!(count(&img, rgb_of(COLORS[2])), 0, "the empty series is not drawn");
}

/// Lengths of the horizontal runs of `c` pixels, one per bar (rows grouped by bar).
fn bar_lengths(img: &RgbImage, c: [u8; 3]) -> Vec<usize> {
    let mut bars = Vec::new();
    let mut in_bar = false;
    for y in 0..img.height {
        let row = &img.data[y * img.width * 3..(y + 1) * img.width * 3];
        let n = row.chunks_exact(3).filter(|p| *p == c).count();
        if n > 0 && !in_bar {
            bars.push(n);
        } else if n > 0 {
            let last = bars.last_mut().unwrap();
            *last = (*last).max(n);
        }
        in_bar = n > 0;
    }
    bars
}

#[test]
fn iou_bars_are_as_long_as_their_values() {
    let chart = BarChart {
        title: "IoU per class".into(),
        x_label: "intersection over union".into(),
        bars: vec![("floor".into(), Some(1.0)), ("wall".into(), Some(0.5)), ("ceiling".into(), None), ("box".into(), Some(0.25))],
    };
    let img = decode_rgb(&png(&chart, "iou").unwrap()).unwrap();
    let bars = bar_lengths(&img, rgb_of(COLORS[0]));
    assert_eq!(bars.len(), 3, "three classes have a value: {bars:?}");
    let full = bars[0] as f64;
    assert!((bars[1] as f64 / full - 0.5).abs() < 0.01, "{bars:?}");
    assert!((bars[2] as f64 / full - 0.25).abs() < 0.01, "{bars:?}");
    has_texts(&svg(&chart).unwrap(), &["floor", "wall", "ceiling", "box", "absent", "0.500", "intersection over union"]);
}

#[test]
fn the_confusion_heat_map_shows_row_normalised_values() {
    let names = vec!["floor".to_string(), "wall".to_string(), "box".to_string()];
    // Rows = truth: floor 8 right, 2 as wall; wall all right; box never seen.
    let counts = [8, 2, 0, 0, 10, 0, 0, 0, 0];
    let map = HeatMap::confusion("Confusion", &names, &counts);
    assert_eq!(map.values, vec![0.8, 0.2, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let img = decode_rgb(&png(&map, "confusion").unwrap()).unwrap();
    let cell = map.cell() as usize;
    for v in [0.8, 0.2, 1.0] {
        // Each cell is a filled square of its colour (less the value written in it).
        let n = count(&img, rgb_of(cell_color(v)));
        assert!(n > cell * cell / 2, "value {v}: {n} pixels of a {cell}² cell");
    }
    assert!(count(&img, rgb_of(cell_color(0.5))) < 20, "no cell has the value 0.5");
    has_texts(&svg(&map).unwrap(), &["floor", "wall", "box", "80", "20", "100", "predicted class", "true class"]);
}

fn sample(name: &str, [h, w]: [usize; 2], class: u8, depth: Option<f32>) -> Sample {
    let rgb = (0..h * w * 3).map(|i| ((i * 37 + class as usize * 11) % 256) as u8).collect();
    let label = (0..h * w).map(|i| if i % w < w / 2 { class } else { (class + 1) % 3 }).collect();
    Sample {
        name: name.into(),
        rgb: RgbImage { width: w, height: h, data: rgb },
        label: Some(Plane { width: w, height: h, data: label }),
        depth: depth.map(|d| Plane { width: w, height: h, data: (0..h * w).map(|i| if i % w == 0 { 0.0 } else { d + (i / w) as f32 * 0.1 }).collect() }),
        normal: None,
    }
}

#[test]
fn panel_samples_are_the_samples_without_padding() {
    let a = sample("a", [6, 10], 0, Some(2.0));
    let b = sample("b", [4, 7], 1, Some(3.0));
    let batch = collate(vec![(0, a.clone(), [6, 10]), (1, b.clone(), [4, 7])], 255);
    let labels: Vec<i64> = batch.labels.clone().unwrap();
    let depth = batch.depth.clone().unwrap();
    for (i, s) in [a, b].iter().enumerate() {
        let p = PanelSample::from_batch(&batch, i, Some((&labels, &labels)), Some((&depth, &depth)));
        assert_eq!(p.name, s.name);
        assert_eq!(p.size, [s.rgb.height, s.rgb.width]);
        assert_eq!(p.rgb, s.rgb.data, "the normalisation is undone exactly");
        let (g, _) = p.labels.unwrap();
        assert_eq!(g, s.label.as_ref().unwrap().data.iter().map(|&v| v as i64).collect::<Vec<_>>());
        assert_eq!(p.depth.unwrap().0, s.depth.as_ref().unwrap().data);
    }
}

#[test]
fn panel_tiles_hold_each_samples_pixels_classes_and_depths() {
    let palette = Palette::generic(3);
    let [h, w] = [8, 10];
    let rgb: Vec<u8> = (0..h * w * 3).map(|i| (i % 251) as u8).collect();
    let gt: Vec<i64> = (0..h * w).map(|i| (i % w / 4) as i64).collect(); // classes 0, 1, 2 by column
    let pred: Vec<i64> = gt.iter().map(|&l| (l + 1) % 3).collect();
    let gt_d: Vec<f32> = (0..h * w).map(|i| if i / w == 0 { 0.0 } else { 1.0 + (i % w) as f32 * 0.5 }).collect(); // 1..5.5 m
    let pred_d: Vec<f32> = gt_d.iter().map(|&d| if d > 0.0 { d } else { 3.0 }).collect();
    let s = PanelSample { name: "s".into(), size: [h, w], rgb: rgb.clone(), labels: Some((gt.clone(), pred.clone())), depth: Some((gt_d.clone(), pred_d.clone())) };
    let no_depth = PanelSample { name: "t".into(), size: [h, w], rgb: rgb.clone(), labels: Some((gt.clone(), gt.clone())), depth: None };
    let panel = render(&[s, no_depth], &palette, "test").unwrap();
    assert_eq!(panel.columns, vec!["RGB", "true segmentation", "predicted segmentation", "true depth", "predicted depth", "|depth error|"]);
    assert_eq!(panel.depth_range, Some([1.0, 5.5]), "the measured range");
    let [th, tw] = tile_size([h, w]);
    assert_eq!([th, tw], [128, 160], "small images are enlarged 16×");
    let px = |tile: [usize; 4], sx: usize, sy: usize| {
        // The centre of source pixel (sx, sy) in the tile.
        let (x, y) = (tile[0] + (2 * sx + 1) * tile[2] / (2 * w), tile[1] + (2 * sy + 1) * tile[3] / (2 * h));
        let o = (y * panel.image.width + x) * 3;
        [panel.image.data[o], panel.image.data[o + 1], panel.image.data[o + 2]]
    };
    let [lo, hi] = panel.depth_range.unwrap();
    let row = &panel.tiles[0];
    for (sx, sy) in [(0, 0), (3, 2), (5, 7), (9, 4)] {
        let i = sy * w + sx;
        assert_eq!(px(row[0], sx, sy), [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]], "RGB at {sx},{sy}");
        assert_eq!(px(row[1], sx, sy), palette.color(gt[i] as usize), "true class at {sx},{sy}");
        assert_eq!(px(row[2], sx, sy), palette.color(pred[i] as usize), "predicted class at {sx},{sy}");
        let want_gt = if gt_d[i] > 0.0 { turbo((gt_d[i] - lo) / (hi - lo)) } else { [0, 0, 0] };
        assert_eq!(px(row[3], sx, sy), want_gt, "true depth at {sx},{sy}");
        assert_eq!(px(row[4], sx, sy), turbo((pred_d[i] - lo) / (hi - lo)), "predicted depth at {sx},{sy}");
        let want_err = if gt_d[i] > 0.0 { turbo(0.0) } else { [0, 0, 0] };
        assert_eq!(px(row[5], sx, sy), want_err, "error at {sx},{sy}");
    }
    // The second sample has no depth: its depth tiles are plain grey.
    assert_eq!(px(panel.tiles[1][3], 4, 4), [230, 230, 230]);
    assert_eq!(px(panel.tiles[1][2], 4, 4), palette.color(gt[4 * w + 4] as usize));
}

#[test]
fn the_runs_charts_follow_its_records() {
    let epochs: Vec<serde_json::Value> = (1..=4)
        .map(|e| {
            let mut r = json!({"kind": "epoch", "epoch": e, "iteration": e * 10, "time_s": 1.0,
                "train": {"loss": 2.0 / e as f64, "segm": 1.0, "depth": 3.0 / e as f64}, "weights": {"segm": 0.5, "depth": 0.5}});
            if e % 2 == 0 {
                r["val"] = json!({"loss": 1.5, "miou": 0.1 * e as f64, "pixel_acc": 0.5, "rmse": 1.0 / e as f64, "abs_rel": 0.3, "delta1": 0.6});
            }
            r
        })
        .collect();
    let iters: Vec<serde_json::Value> =
        (1..=40).step_by(5).map(|i| json!({"kind": "iter", "iteration": i, "loss": 1.0, "losses": {"segm": 0.7, "depth": 1.3}, "lr_encoder": 0.01, "lr_decoder": 0.02, "images_per_s": 30.0})).collect();
    let charts = line_charts(&epochs, &iters);
    let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["loss", "task_losses", "loss_by_iteration", "learning_rate", "task_weights", "throughput", "val_segmentation", "val_depth_rmse", "val_depth_ratios"]);
    let loss = &charts[0].1;
    assert_eq!(loss.series[0].points, vec![(1.0, 2.0), (2.0, 1.0), (3.0, 2.0 / 3.0), (4.0, 0.5)]);
    assert_eq!(loss.series[1].name, "validation");
    assert_eq!(loss.series[1].points, vec![(2.0, 1.5), (4.0, 1.5)], "validated epochs only");
    let seg = &charts[6].1;
    assert_eq!(seg.series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["miou", "pixel_acc"], "mean_acc was not logged");
    assert_eq!(seg.series[0].points, vec![(2.0, 0.2), (4.0, 0.4)]);
    let lr = &charts[3].1;
    assert_eq!(lr.series[1].points.len(), 8);
    assert!(lr.series[1].points.iter().all(|p| p.1 == 0.02));
    // Without validations, no validation charts.
    let no_val: Vec<serde_json::Value> = epochs.iter().filter(|e| e.get("val").is_none()).cloned().collect();
    assert!(line_charts(&no_val, &[]).iter().all(|(n, _)| !n.starts_with("val_")));
}
