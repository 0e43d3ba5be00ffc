//! The invitation as a QR code: in the terminal (two modules per character cell), as SVG and
//! as PNG.

use std::path::Path;

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

fn code(link: &str) -> Result<QrCode, String> {
    // Links are ~630 bytes; level L keeps the symbol small enough to scan from a screen.
    QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L).map_err(|e| e.to_string())
}

/// The QR code as terminal text.
pub(crate) fn terminal(link: &str) -> Result<String, String> {
    Ok(code(link)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

pub(crate) fn write_svg(link: &str, path: &Path) -> Result<(), String> {
    let svg = code(link)?
        .render::<svg::Color<'_>>()
        .min_dimensions(400, 400)
        .build();
    std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))
}

/// A grayscale PNG, `scale` pixels per module, with a 4-module quiet zone.
pub(crate) fn write_png(link: &str, path: &Path) -> Result<(), String> {
    let code = code(link)?;
    let width = code.width();
    let scale = 8usize;
    let quiet = 4usize;
    let side = (width + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            for dy in 0..scale {
                let row = (y * scale + dy) * side;
                pixels[row + x * scale..row + (x + 1) * scale].fill(0);
            }
        }
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| e.to_string())?;
    w.write_image_data(&pixels).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_real_link() {
        let link = format!("xrcp:/{}", "A".repeat(620));
        let text = terminal(&link).unwrap();
        assert!(text.lines().count() > 30);
        let dir = tempfile::tempdir().unwrap();
        write_png(&link, &dir.path().join("q.png")).unwrap();
        let png = std::fs::read(dir.path().join("q.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        write_svg(&link, &dir.path().join("q.svg")).unwrap();
        assert!(std::fs::read_to_string(dir.path().join("q.svg"))
            .unwrap()
            .contains("<svg"));
    }
}
