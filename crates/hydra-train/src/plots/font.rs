//! The plots' one font, DejaVu Sans (embedded by the `dejavu` crate), registered with plotters'
//! ab_glyph text renderer, so that plots need no system font.

use std::sync::Once;

use plotters::style::FontStyle;

/// The family name plots ask for.
pub const FAMILY: &str = "sans-serif";

/// Register the font once per process.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType file compiled into the binary: a failure here is a
        // build defect, not a user's mistake.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular()).is_err() {
            panic!("the embedded DejaVu Sans font did not parse");
        }
        if plotters::style::register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold()).is_err() {
            panic!("the embedded DejaVu Sans Bold font did not parse");
        }
    });
}
