use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use moodwire_core::Emotion;
use moodwire_model::metrics::{ConfusionMatrix, EvalReport};
use moodwire_model::Engine;
use serde::Serialize;

use crate::model_args::{resolve, ModelArgs};

#[derive(clap::Args)]
pub struct Args {
    /// `text;label` lines (the emotion data set's format), or JSON lines with `text`
    /// and `label` (`.jsonl`). Not with `--suite`.
    #[arg(required_unless_present = "suite")]
    file: Option<PathBuf>,
    /// Run the robustness suite instead (the files of `experiment/common.py`'s SUITES):
    /// the plain validation and test splits, the same with the template cue rewritten
    /// in four ways, and the realistic posts' dev and test parts.
    #[arg(long, conflicts_with_all = ["file", "predictions"])]
    suite: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the predicted label of every line to this file, one per line.
    #[arg(long)]
    predictions: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

/// The robustness suite: each suite's parts are evaluated apart (as evaluate.py
/// batches them) and pooled.
const SUITES: [(&str, &[&str]); 6] = [
    ("validation", &["data/emotion/validation.txt"]),
    ("test", &["data/emotion/test.txt"]),
    (
        "validation_cue_free",
        &[
            "experiment/data/cue_free/validation_i_am.txt",
            "experiment/data/cue_free/validation_im_so.txt",
            "experiment/data/cue_free/validation_dropped.txt",
            "experiment/data/cue_free/validation_third.txt",
        ],
    ),
    (
        "test_cue_free",
        &[
            "experiment/data/cue_free/test_i_am.txt",
            "experiment/data/cue_free/test_im_so.txt",
            "experiment/data/cue_free/test_dropped.txt",
            "experiment/data/cue_free/test_third.txt",
        ],
    ),
    ("realistic_dev", &["experiment/data/realistic/dev.jsonl"]),
    ("realistic_test", &["experiment/data/realistic/test.jsonl"]),
];

#[derive(Serialize)]
struct JsonReport<'a> {
    model: &'a str,
    file: String,
    #[serde(flatten)]
    report: &'a EvalReport,
}

/// One part of a suite: its file and what it scored.
#[derive(Serialize)]
struct PartReport {
    file: String,
    n: u64,
    accuracy: f64,
    macro_f1: f64,
    ece: f64,
}

#[derive(Serialize)]
struct SuiteReport {
    suite: &'static str,
    #[serde(flatten)]
    report: EvalReport,
    parts: Vec<PartReport>,
}

pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut engine = runtime.block_on(args.model.load_engine_async())?;
    let mut out = std::io::stdout().lock();
    match &args.file {
        Some(file) if !args.suite => evaluate_file(&args, &mut engine, file, &mut out),
        _ => evaluate_suite(&args, &mut engine, &mut out),
    }
}

fn evaluate_file(
    args: &Args,
    engine: &mut Engine,
    file: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (texts, gold) = read_labelled(file)?;
    let mut matrix = ConfusionMatrix::default();
    let predicted = classify(engine, &texts, &gold, &mut matrix)?;
    let report = matrix.report();
    if let Some(path) = &args.predictions {
        let lines: String = predicted.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(path, lines).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        let json = JsonReport {
            model: engine.version(),
            file: file.display().to_string(),
            report: &report,
        };
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
    } else {
        print_tables(out, engine.version(), &report)?;
    }
    Ok(())
}

fn evaluate_suite(args: &Args, engine: &mut Engine, out: &mut impl Write) -> anyhow::Result<()> {
    let mut suites = Vec::new();
    for (suite, files) in SUITES {
        let mut pooled = ConfusionMatrix::default();
        let mut parts = Vec::new();
        for file in files {
            let path = resolve(Path::new(file));
            let (texts, gold) = read_labelled(&path)?;
            let mut part = ConfusionMatrix::default();
            classify(engine, &texts, &gold, &mut part)?;
            pooled.merge(&part);
            let r = part.report();
            parts.push(PartReport {
                file: (*file).to_string(),
                n: r.n,
                accuracy: r.accuracy,
                macro_f1: r.macro_f1,
                ece: r.ece,
            });
        }
        suites.push(SuiteReport {
            suite,
            report: pooled.report(),
            parts,
        });
    }
    if args.json {
        let json = serde_json::json!({"model": engine.version(), "suites": suites});
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "model {}\n", engine.version())?;
    writeln!(
        out,
        "{:<20} {:>6} {:>9} {:>9} {:>7}",
        "suite", "texts", "accuracy", "macro-F1", "ECE"
    )?;
    for s in &suites {
        let r = &s.report;
        writeln!(
            out,
            "{:<20} {:>6} {:>9.4} {:>9.4} {:>7.4}",
            s.suite, r.n, r.accuracy, r.macro_f1, r.ece
        )?;
        if s.parts.len() > 1 {
            for p in &s.parts {
                // experiment/data/cue_free/test_i_am.txt -> i_am
                let stem = Path::new(&p.file).file_stem().and_then(|s| s.to_str());
                let name = stem
                    .and_then(|s| s.split_once('_'))
                    .map_or(p.file.as_str(), |(_, v)| v);
                writeln!(
                    out,
                    "  {:<18} {:>6} {:>9.4} {:>9.4} {:>7.4}",
                    name, p.n, p.accuracy, p.macro_f1, p.ece
                )?;
            }
        }
    }
    Ok(())
}

/// Classifies every text in one call (so batches are built exactly as `evaluate.py`
/// builds them: INT8 activations are quantized per batch, so batch makeup matters),
/// adds each prediction to `matrix`, and returns the labels.
fn classify(
    engine: &mut Engine,
    texts: &[String],
    gold: &[Emotion],
    matrix: &mut ConfusionMatrix,
) -> anyhow::Result<Vec<Emotion>> {
    let progress = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} texts, {per_sec}, eta {eta}")
            .expect("valid template"),
    );
    let predictions = engine
        .classify_with(texts, |done| {
            progress.inc(done.texts as u64);
            true
        })?
        .expect("never stopped");
    progress.finish_and_clear();
    for (p, &g) in predictions.iter().zip(gold) {
        matrix.add(g, p.label, p.score);
    }
    Ok(predictions.into_iter().map(|p| p.label).collect())
}

/// Reads `text;label` lines (the label after the last `;`), or JSON lines with `text`
/// and `label` when the file ends in `.jsonl`.
fn read_labelled(path: &Path) -> anyhow::Result<(Vec<String>, Vec<Emotion>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.display().to_string();
    let json_lines = path.extension().is_some_and(|e| e == "jsonl");
    let (mut texts, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in super::text_lines(std::io::BufReader::new(file), &name).enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (text, label) = if json_lines {
            #[derive(serde::Deserialize)]
            struct Row {
                text: String,
                label: String,
            }
            let row: Row = serde_json::from_str(&line).with_context(|| {
                format!("{name}: line {} is not {{\"text\", \"label\"}}", i + 1)
            })?;
            (row.text, row.label)
        } else {
            let (text, label) = line
                .rsplit_once(';')
                .with_context(|| format!("{name}: line {} has no `;label` at its end", i + 1))?;
            (text.to_string(), label.to_string())
        };
        let label = label
            .parse::<Emotion>()
            .with_context(|| format!("{name}: line {}", i + 1))?;
        texts.push(text);
        labels.push(label);
    }
    anyhow::ensure!(!texts.is_empty(), "{name} has no labelled lines");
    Ok((texts, labels))
}

fn print_tables(out: &mut impl Write, model: &str, r: &EvalReport) -> std::io::Result<()> {
    writeln!(out, "model        {model}")?;
    writeln!(out, "texts        {}", r.n)?;
    writeln!(out, "accuracy     {:.4}", r.accuracy)?;
    writeln!(out, "macro-F1     {:.4}", r.macro_f1)?;
    writeln!(out, "weighted-F1  {:.4}", r.weighted_f1)?;
    writeln!(out, "ECE          {:.4}\n", r.ece)?;
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
