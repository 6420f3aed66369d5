pub mod analyze;
pub mod bench;
pub mod classify;
pub mod eval;
pub mod index;
pub mod model;
pub mod serve;
pub mod sync;
pub mod warm;
pub mod worker;

use std::io::BufRead;

/// Lines of a text input as UTF-8 strings; a line that is not UTF-8 is an error
/// naming the input and the line number.
pub fn text_lines<'a>(
    input: impl BufRead + 'a,
    name: &'a str,
) -> impl Iterator<Item = anyhow::Result<String>> + 'a {
    input.split(b'\n').enumerate().map(move |(i, bytes)| {
        let mut bytes = bytes.map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "{name}: line {} is not valid UTF-8 (invalid byte at column {})",
                i + 1,
                e.utf8_error().valid_up_to() + 1
            )
        })
    })
}
