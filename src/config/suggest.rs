/// The candidate closest to `word` by Damerau-Levenshtein distance (a transposition such as
/// `sede` for `seed` counts as one edit), if it is close enough to be a plausible typo (at
/// most a third of the word's length, and at least 1 edit allowed).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_picks_plausible_typos_only() {
        let keys = ["seed", "epochs", "patience", "batch_size"];
        assert_eq!(nearest("sed", keys), Some("seed".into()));
        assert_eq!(
            nearest("sede", keys),
            Some("seed".into()),
            "a transposition"
        );
        assert_eq!(nearest("paitence", keys), Some("patience".into()));
        assert_eq!(nearest("batchsize", keys), Some("batch_size".into()));
        assert_eq!(nearest("learning_rate", keys), None);
    }
}
