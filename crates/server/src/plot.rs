//! The pie chart of an analysis, rendered in memory to PNG.

use plotters::prelude::*;
use plotters::style::FontStyle;

use moodwire_core::{Analysis, Emotion};

pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 480;
const FONT: &str = "moodwire-sans";

/// One fixed colour per emotion, the same in every chart.
pub fn colour(emotion: Emotion) -> RGBColor {
    match emotion {
        Emotion::Sadness => RGBColor(0x4C, 0x72, 0xB0),
        Emotion::Joy => RGBColor(0xF2, 0xB7, 0x01),
        Emotion::Love => RGBColor(0xE1, 0x5F, 0x99),
        Emotion::Anger => RGBColor(0xD6, 0x27, 0x28),
        Emotion::Fear => RGBColor(0x7B, 0x4F, 0xA0),
        Emotion::Surprise => RGBColor(0x2C, 0xA0, 0x8C),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not render the chart: {0}")]
pub struct PlotError(String);

fn register_font() -> Result<(), PlotError> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .and_then(|_| {
                    plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold())
                })
                .map_err(|_| "the embedded DejaVu font did not load".to_string())
        })
        .clone()
        .map_err(PlotError)
}

/// A PNG: title with the keyword and post count, the pie, and a legend with
/// every emotion's share and count (small slices stay readable there).
pub fn render_png(analysis: &Analysis) -> Result<Vec<u8>, PlotError> {
    register_font()?;
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw(analysis, &mut rgb).map_err(|e| PlotError(e.to_string()))?;
    encode_png(&rgb)
}

fn draw(analysis: &Analysis, rgb: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "Emotions about \u{201C}{}\u{201D} \u{2014} {} posts",
        truncate(&analysis.keyword, 40),
        analysis.count
    );
    root.draw(&Text::new(
        title,
        (24, 18),
        (FONT, 26, FontStyle::Bold).into_font().color(&BLACK),
    ))?;

    let center = (250, 265);
    let radius = 180.0;
    let shares: Vec<_> = analysis.agg.iter().filter(|s| s.count > 0).collect();
    if shares.is_empty() {
        root.draw(&Circle::new(
            center,
            radius as i32,
            ShapeStyle::from(&RGBColor(0xDD, 0xDD, 0xDD)).filled(),
        ))?;
        root.draw(&Text::new(
            "no posts found",
            (175, 255),
            (FONT, 22).into_font().color(&BLACK),
        ))?;
    } else {
        let sizes: Vec<f64> = shares.iter().map(|s| f64::from(s.count)).collect();
        let colours: Vec<RGBColor> = shares.iter().map(|s| colour(s.label)).collect();
        // Slices under 8 % get no label on the pie (it would not fit): the legend names them.
        let labels: Vec<String> = shares
            .iter()
            .map(|s| {
                if s.pct >= 8.0 {
                    format!("{:.1}%", s.pct)
                } else {
                    String::new()
                }
            })
            .collect();
        let mut pie = Pie::new(&center, &radius, &sizes, &colours, &labels);
        pie.start_angle(-90.0);
        pie.label_style((FONT, 20).into_font().color(&BLACK));
        pie.label_offset(-28.0);
        root.draw(&pie)?;
    }

    let (x, mut y) = (500, 120);
    let header = (FONT, 18, FontStyle::Bold).into_font().color(&BLACK);
    let cell = (FONT, 19).into_font().color(&BLACK);
    let columns = [x + 32, x + 150, x + 235];
    for (text, cx) in ["emotion", "share", "posts"].into_iter().zip(columns) {
        root.draw(&Text::new(text, (cx, y - 34), header.clone()))?;
    }
    for share in &analysis.agg {
        root.draw(&Rectangle::new(
            [(x, y), (x + 22, y + 22)],
            colour(share.label).filled(),
        ))?;
        let cells = [
            share.label.as_str().to_string(),
            format!("{:.1}%", share.pct),
            share.count.to_string(),
        ];
        for (text, cx) in cells.into_iter().zip(columns) {
            root.draw(&Text::new(text, (cx, y + 1), cell.clone()))?;
        }
        y += 40;
    }
    root.draw(&Text::new(
        format!("model {}", truncate(&analysis.model, 36)),
        (x, y + 10),
        (FONT, 13).into_font().color(&RGBColor(0x66, 0x66, 0x66)),
    ))?;
    root.present()?;
    Ok(())
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        text.chars()
            .take(max_chars - 1)
            .chain(['\u{2026}'])
            .collect()
    }
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| PlotError(e.to_string()))?;
    writer
        .write_image_data(rgb)
        .map_err(|e| PlotError(e.to_string()))?;
    writer.finish().map_err(|e| PlotError(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use moodwire_core::{aggregate, PostsSource, Prediction};

    fn analysis(labels: &[Emotion]) -> Analysis {
        let predictions: Vec<_> = labels
            .iter()
            .map(|&e| {
                let mut p = [0.02f32; 6];
                p[e.index()] = 0.9;
                Prediction::from_probabilities(p)
            })
            .collect();
        Analysis {
            id: "01".into(),
            keyword: "AI".into(),
            limit: 10,
            count: predictions.len() as u32,
            agg: aggregate(&predictions),
            model: "test-model".into(),
            posts_source: PostsSource::Sample,
            analyzed_at: chrono::Utc::now(),
            examples: Default::default(),
            scope: Default::default(),
        }
    }

    #[test]
    fn renders_a_png_of_the_expected_size() {
        let png = render_png(&analysis(&[
            Emotion::Joy,
            Emotion::Joy,
            Emotion::Fear,
            Emotion::Surprise,
        ]))
        .unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (WIDTH, HEIGHT));
    }

    #[test]
    fn renders_an_empty_analysis() {
        assert!(render_png(&analysis(&[])).unwrap().starts_with(b"\x89PNG"));
    }
}
