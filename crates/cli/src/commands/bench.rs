pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
#[derive(clap::Args)]
pub struct Args {}
