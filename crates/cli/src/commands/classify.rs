use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use moodwire_core::Emotion;
use serde::Serialize;

use crate::model_args::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Text file, one text per line (stdin when absent).
    file: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct Line<'a> {
    text: &'a str,
    label: Emotion,
    score: f32,
    scores: BTreeMap<&'static str, f32>,
}

/// Lines classified at a time: bounds memory whatever the input size.
const CHUNK: usize = 1024;

pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut engine = runtime.block_on(args.model.load_engine_async())?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let name = args
        .file
        .as_ref()
        .map_or("stdin".into(), |p| p.display().to_string());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut chunk = Vec::with_capacity(CHUNK);
    for line in crate::commands::text_lines(input, &name) {
        chunk.push(line?);
        if chunk.len() == CHUNK {
            write_chunk(&mut engine, &chunk, &mut out)?;
            chunk.clear();
        }
    }
    write_chunk(&mut engine, &chunk, &mut out)?;
    out.flush()?;
    Ok(())
}

fn write_chunk(
    engine: &mut moodwire_model::Engine,
    texts: &[String],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    for (text, p) in texts.iter().zip(engine.classify(texts)?) {
        let scores = Emotion::ALL
            .into_iter()
            .map(|e| (e.as_str(), p.probabilities[e.index()]))
            .collect();
        let line = Line {
            text,
            label: p.label,
            score: p.score,
            scores,
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
