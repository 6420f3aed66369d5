use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use moodwire_core::Emotion;
use moodwire_model::metrics::{ConfusionMatrix, EvalReport};
use serde::Serialize;

use crate::model_args::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    /// `text;label` lines (the emotion data set's format).
    file: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the predicted label of every line to this file, one per line.
    #[arg(long)]
    predictions: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    model: &'a str,
    file: String,
    #[serde(flatten)]
    report: &'a EvalReport,
}

pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let (texts, gold) = read_labelled(&args.file)?;
    let mut engine = runtime.block_on(args.model.load_engine_async())?;
    let progress = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} texts, {per_sec}, eta {eta}")
            .expect("valid template"),
    );
    // All texts in one call, so batches are built exactly as `evaluate.py` builds
    // them: INT8 activations are quantized per batch, so batch makeup matters.
    let predicted: Vec<Emotion> = engine
        .classify_with(&texts, |done| {
            progress.inc(done as u64);
            true
        })?
        .expect("never stopped")
        .into_iter()
        .map(|p| p.label)
        .collect();
    progress.finish_and_clear();

    let mut matrix = ConfusionMatrix::default();
    for (&g, &p) in gold.iter().zip(&predicted) {
        matrix.add(g, p);
    }
    let report = matrix.report();
    if let Some(path) = &args.predictions {
        let lines: String = predicted.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(path, lines).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = JsonReport {
            model: engine.version(),
            file: args.file.display().to_string(),
            report: &report,
        };
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else {
        print_tables(&mut out, engine.version(), &report)?;
    }
    Ok(())
}

/// Reads `text;label` lines; the label is after the last `;`.
fn read_labelled(path: &PathBuf) -> anyhow::Result<(Vec<String>, Vec<Emotion>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.display().to_string();
    let (mut texts, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in super::text_lines(std::io::BufReader::new(file), &name).enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (text, label) = line
            .rsplit_once(';')
            .with_context(|| format!("{name}: line {} has no `;label` at its end", i + 1))?;
        let label = label
            .parse::<Emotion>()
            .with_context(|| format!("{name}: line {}", i + 1))?;
        texts.push(text.to_string());
        labels.push(label);
    }
    anyhow::ensure!(!texts.is_empty(), "{name} has no `text;label` lines");
    Ok((texts, labels))
}

fn print_tables(out: &mut impl Write, model: &str, r: &EvalReport) -> std::io::Result<()> {
    writeln!(out, "model        {model}")?;
    writeln!(out, "texts        {}", r.n)?;
    writeln!(out, "accuracy     {:.4}", r.accuracy)?;
    writeln!(out, "macro-F1     {:.4}", r.macro_f1)?;
    writeln!(out, "weighted-F1  {:.4}\n", r.weighted_f1)?;
    writeln!(
        out,
        "{:<10} {:>9} {:>7} {:>7} {:>8}",
        "label", "precision", "recall", "f1", "support"
    )?;
    for c in &r.per_class {
        writeln!(
            out,
            "{:<10} {:>9.4} {:>7.4} {:>7.4} {:>8}",
            c.label.as_str(),
            c.precision,
            c.recall,
            c.f1,
            c.support
        )?;
    }
    writeln!(
        out,
        "\nconfusion matrix (rows: true label, columns: predicted)"
    )?;
    write!(out, "{:<10}", "")?;
    for e in Emotion::ALL {
        write!(out, " {:>8}", e.as_str())?;
    }
    writeln!(out)?;
    for e in Emotion::ALL {
        write!(out, "{:<10}", e.as_str())?;
        for cell in r.confusion_matrix[e.index()] {
            write!(out, " {cell:>8}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
