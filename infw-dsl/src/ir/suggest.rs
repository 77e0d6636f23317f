//! "Did you mean …?": the nearest known name by edit distance.

/// The candidate closest to `name` by Levenshtein distance, if it is close enough to be a
/// plausible typo (distance ≤ max(1, len/3)).
pub fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (levenshtein(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["dense", "relu", "erf", "leaky_relu"];
        assert_eq!(nearest("rellu", &names), Some("relu"));
        assert_eq!(nearest("dnse", &names), Some("dense"));
        assert_eq!(nearest("leaky_rlu", &names), Some("leaky_relu"));
        assert_eq!(nearest("convolution", &names), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
