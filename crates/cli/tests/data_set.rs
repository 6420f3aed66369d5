//! The emotion data set ships in the repository (`data/emotion/`), byte for byte the
//! authors' release: training, evaluation and the benchmarks all read it, so an edit to
//! it must not pass unnoticed.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// SHA-256 of the authors' `train.txt`, `val.txt` and `test.txt` (data/emotion/README.md).
const SPLITS: [(&str, &str); 3] = [
    (
        "train.txt",
        "3ab03d945a6cb783d818ccd06dafd52d2ed8b4f62f0f85a09d7d11870865b190",
    ),
    (
        "validation.txt",
        "34faaa31962fe63cdf5dbf6c132ef8ab166c640254ab991af78f3aea375e79ef",
    ),
    (
        "test.txt",
        "60f531690d20127339e7f054edc299a82c627b5ec0dd5d552d53d544e0cfcc17",
    ),
];

#[test]
fn the_shipped_emotion_splits_are_the_authors_release() {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/emotion");
    for (file, expected) in SPLITS {
        let path = folder.join(file);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, expected, "{file} differs from the authors' release");
    }
}
