//! The files a configuration names: found beside the config file, checked when it is read
//! (palettes, baselines) or before training (weights), and listed so that no output replaces
//! one of them.

use std::path::{Path, PathBuf};

use hydra_model::Task;

use super::Config;
use crate::config_reader::ConfigError;

impl Config {
    /// `data.palette` is readable and names at least `model.num_classes` classes (checked when
    /// the file is loaded, not when the palette is first used).
    pub fn check_palette(&self) -> Result<(), ConfigError> {
        let p = crate::setup::palette_named(&self.data.palette).map_err(|e| ConfigError(format!("data.palette = \"{}\": {e}", self.data.palette)))?;
        let segm = self.tasks().contains(&Task::Segmentation);
        if segm && p.len() < self.model.num_classes {
            return Err(ConfigError(format!(
                "data.palette = \"{}\": {} classes, fewer than model.num_classes = {}; give a palette with a colour for every class",
                self.data.palette,
                p.len(),
                self.model.num_classes
            )));
        }
        for s in std::iter::once(&self.data.train).chain(self.data.val.as_ref()) {
            if let Some(lp) = &s.label_palette {
                crate::setup::palette_named(lp).map_err(|e| ConfigError(format!("label_palette = \"{lp}\": {e}")))?;
            }
        }
        for b in &self.eval.baselines {
            hydra_model::fsio::open_input(b, hydra_model::fsio::MAX_TEXT_BYTES).map_err(|e| ConfigError(format!("eval.baselines: {}: {e}", b.display())))?;
        }
        Ok(())
    }

    /// The weight files training starts from (`model.encoder_weights`, `model.init_weights`)
    /// are readable, checked before the datasets are validated and the run folder is made.
    pub fn check_training_files(&self) -> Result<(), ConfigError> {
        for (key, p) in [("model.encoder_weights", &self.model.encoder_weights), ("model.init_weights", &self.model.init_weights)] {
            if let Some(p) = p {
                hydra_model::fsio::open_input(p, hydra_model::weights::MAX_FILE_BYTES).map_err(|e| ConfigError(format!("{key} = \"{}\": {e}", p.display())))?;
            }
        }
        Ok(())
    }

    /// Files the configuration reads (list files, palettes, weights, baselines): no output of
    /// a command may replace one of them.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for s in std::iter::once(&self.data.train).chain(self.data.val.as_ref()) {
            if let (Some(root), Some(list)) = (&s.root, &s.list) {
                out.push(root.join(list));
            }
            out.extend(s.label_palette.iter().map(PathBuf::from));
        }
        out.push(PathBuf::from(&self.data.palette));
        out.extend(self.model.encoder_weights.iter().cloned());
        out.extend(self.model.init_weights.iter().cloned());
        out.extend(self.eval.baselines.iter().cloned());
        out
    }

    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.starts_with(".") && !p.exists() && base.join(&*p).exists() {
                *p = base.join(&*p);
            }
        };
        for s in std::iter::once(&mut self.data.train).chain(self.data.val.as_mut()) {
            if let Some(r) = s.root.as_mut() {
                fix(r);
            }
        }
        for p in [self.model.encoder_weights.as_mut(), self.model.init_weights.as_mut()].into_iter().flatten() {
            fix(p);
        }
        for p in self.eval.baselines.iter_mut() {
            fix(p);
        }
        // Palette files (not built-in names) are found beside the config as dataset roots are.
        let fix_str = |s: &mut String| {
            if crate::setup::is_builtin_palette(s) {
                return;
            }
            let mut p = PathBuf::from(&*s);
            fix(&mut p);
            *s = p.to_string_lossy().into_owned();
        };
        fix_str(&mut self.data.palette);
        for s in std::iter::once(&mut self.data.train).chain(self.data.val.as_mut()) {
            if let Some(lp) = s.label_palette.as_mut() {
                fix_str(lp);
            }
        }
    }
}
