use super::*;

/// A series' label holds axis values from run ids (file names), and so does the α0 range:
/// the claim's row and its sentence show them as text.
#[test]
fn labels_and_ranges_from_file_names_are_escaped() {
    let series = |label: &str, optimizer| Series {
        label: label.into(),
        optimizer,
        runs: Vec::new(),
    };
    let hd = series("SGD-HD b=<script>x</script>", Variant::SgdHd);
    let base = series("SGD\n| fake | row |", Variant::Sgd);
    let spread = |s: &Series| {
        Some((
            if s.optimizer == Variant::Sgd {
                100.0
            } else {
                10.0
            },
            1,
        ))
    };
    let (claim, sentence) = alpha0_dependence(&hd, &base, &spread, "1e-1 … 1e-3<img>");
    let sentence = sentence.expect("a sentence");
    for text in [&claim.what, &sentence] {
        for bad in ["<script", "<img", "\n| fake"] {
            assert!(!text.contains(bad), "{bad:?} in {text}");
        }
    }
    assert!(
        claim.what.starts_with("SGD-HD b=&#60;script&#62;x"),
        "{}",
        claim.what
    );
    assert!(
        sentence.contains("over α0 = 1e-1 … 1e-3&#60;img&#62;"),
        "{sentence}"
    );
}
