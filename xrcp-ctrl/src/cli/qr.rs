//! The invitation as a QR code: in the terminal (two modules per character cell, drawn only
//! where it fits), as SVG and as PNG.
//!
//! A real link is ~650 bytes, which needs a version 17–18 symbol (85–89 modules a side) even
//! at the lowest error-correction level: with a 2-module quiet zone that is ~93 columns × ~47
//! rows of half blocks, more than an 80×24 terminal. A code that does not fit would wrap into
//! garbage and push the link off the screen, so it is only drawn when the terminal is big
//! enough for the code *and* the link printed after it.

use std::path::Path;

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the terminal code: the standard asks for 4, scanners read a
/// screen with 2, and every module saved is a column and half a row.
const TERMINAL_QUIET: usize = 2;

/// Lines printed after the code besides the link itself: the "Remote session invitation:"
/// header and the line the cursor waits on.
const LINES_AFTER_CODE: usize = 2;

fn code(link: &str) -> Result<QrCode, String> {
    // Level L: the smallest symbol for the link; a screen gives a clean image.
    QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L).map_err(|e| e.to_string())
}

/// The size of the terminal stdout writes to (columns, rows), or `None` when stdout is not a
/// terminal (a pipe, a file) or does not say.
pub(crate) fn terminal_size() -> Option<(usize, usize)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col.into(), ws.ws_row.into()))
}

/// The code as terminal text: one character per module horizontally, two modules per
/// character vertically (upper/lower half blocks). Light modules are drawn, dark ones left to
/// the background: on the usual dark terminal the symbol looks as printed on paper.
pub(crate) struct TerminalCode {
    pub(crate) text: String,
    pub(crate) columns: usize,
    pub(crate) rows: usize,
}

pub(crate) fn terminal(link: &str) -> Result<TerminalCode, String> {
    let code = code(link)?;
    let width = code.width();
    let colors = code.to_colors();
    let side = width + 2 * TERMINAL_QUIET;
    let light = |x: usize, y: usize| -> bool {
        let inside = |v: usize| (TERMINAL_QUIET..TERMINAL_QUIET + width).contains(&v);
        !(inside(x) && inside(y))
            || colors[(y - TERMINAL_QUIET) * width + (x - TERMINAL_QUIET)] == Color::Light
    };
    let rows = side.div_ceil(2);
    let mut text = String::with_capacity(rows * (side * 3 + 1));
    for row in 0..rows {
        if row > 0 {
            text.push('\n');
        }
        let (top, bottom) = (2 * row, 2 * row + 1);
        for x in 0..side {
            // Below the last module (an odd side) is the terminal's background.
            let lower = bottom < side && light(x, bottom);
            text.push(match (light(x, top), lower) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
    }
    Ok(TerminalCode {
        text,
        columns: side,
        rows,
    })
}

/// Where the code goes in a terminal of `size` (columns, rows; `None`: not a terminal).
pub(crate) enum Placement {
    /// Draw this text.
    Draw(String),
    /// The code and the link after it need `needs` (columns, rows); the terminal has `has`.
    TooSmall {
        needs: (usize, usize),
        has: (usize, usize),
    },
}

/// Decides whether the code and then the link fit on one screen of `size`; without a size
/// (stdout is not a terminal) the code is given as text, as before.
pub(crate) fn place(link: &str, size: Option<(usize, usize)>) -> Result<Placement, String> {
    let code = terminal(link)?;
    let link_rows = |columns: usize| link.chars().count().div_ceil(columns.max(1));
    let Some((columns, rows)) = size else {
        return Ok(Placement::Draw(code.text));
    };
    if columns >= code.columns && rows >= code.rows + link_rows(columns) + LINES_AFTER_CODE {
        return Ok(Placement::Draw(code.text));
    }
    Ok(Placement::TooSmall {
        needs: (
            code.columns,
            code.rows + link_rows(code.columns) + LINES_AFTER_CODE,
        ),
        has: (columns, rows),
    })
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
        if *c == Color::Dark {
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

    const LINK_LEN: usize = 650;

    #[test]
    fn renders_a_real_sized_link() {
        let link = format!("xrcp:/{}", "a".repeat(LINK_LEN - 6));
        let code = terminal(&link).unwrap();
        assert_eq!(code.text.lines().count(), code.rows);
        assert!(code.text.lines().all(|l| l.chars().count() == code.columns));
        // Version 18 (89 modules) at level L, plus the 2-module margins.
        assert_eq!((code.columns, code.rows), (93, 47));
        let dir = tempfile::tempdir().unwrap();
        write_png(&link, &dir.path().join("q.png")).unwrap();
        let png = std::fs::read(dir.path().join("q.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        write_svg(&link, &dir.path().join("q.svg")).unwrap();
        assert!(std::fs::read_to_string(dir.path().join("q.svg"))
            .unwrap()
            .contains("<svg"));
    }

    #[test]
    fn drawn_only_where_the_code_and_the_link_fit() {
        let link = format!("xrcp:/{}", "a".repeat(LINK_LEN - 6));
        assert!(matches!(place(&link, None), Ok(Placement::Draw(_))));
        assert!(matches!(
            place(&link, Some((120, 60))),
            Ok(Placement::Draw(_))
        ));
        match place(&link, Some((80, 24))).unwrap() {
            Placement::TooSmall { needs, has } => {
                // 47 rows of code, 7 of link at 93 columns, the header and the cursor line.
                assert_eq!(needs, (93, 56));
                assert_eq!(has, (80, 24));
            }
            Placement::Draw(_) => panic!("drawn in 80×24"),
        }
        // Wide enough but one row short.
        assert!(matches!(
            place(&link, Some((93, 55))),
            Ok(Placement::TooSmall { .. })
        ));
        assert!(matches!(
            place(&link, Some((93, 56))),
            Ok(Placement::Draw(_))
        ));
    }
}
