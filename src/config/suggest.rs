/// The candidate closest to `word` by edit distance, if it is close enough to be a
/// plausible typo (at most a third of the word's length, and at least 1 edit allowed).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_string())
}

/// Levenshtein distance over chars, one row at a time.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_hand_counts() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("seed", "seed"), 0);
        assert_eq!(edit_distance("paitence", "patience"), 2);
    }

    #[test]
    fn nearest_picks_plausible_typos_only() {
        let keys = ["seed", "epochs", "patience", "batch_size"];
        assert_eq!(nearest("sed", keys), Some("seed".into()));
        assert_eq!(nearest("batchsize", keys), Some("batch_size".into()));
        assert_eq!(nearest("learning_rate", keys), None);
    }
}
