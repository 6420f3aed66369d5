use std::path::PathBuf;

use anyhow::Context;
use moodwire_model::model_store::{self, S3Location};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Upload a model folder (model.onnx, tokenizer.json, config.json) to S3-compatible
    /// storage, for `MOODWIRE_MODEL=s3://bucket/prefix`.
    Push {
        /// The model folder.
        dir: PathBuf,
        /// `s3://bucket/prefix`
        location: String,
    },
}

pub fn run(command: Command, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    match command {
        Command::Push { dir, location } => {
            let location: S3Location = location.parse()?;
            let version = runtime
                .block_on(model_store::push(&dir, &location))
                .with_context(|| format!("cannot push {} to {location}", dir.display()))?;
            println!("pushed {version} to {location}");
            Ok(())
        }
    }
}
