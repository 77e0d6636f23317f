//! A seeded, class-stratified split of a training set into train and validation parts, for
//! choosing hyper-parameters (ridge, time, learning rate) without touching the test set.

use super::dataset::Dataset;
use crate::error::{Error, Result};
use crate::solve::check;
use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Labelled examples taken from a dataset's training set.
#[derive(Clone, Debug, PartialEq)]
pub struct Examples {
    /// Features, one row per example.
    pub x: Array2<f64>,
    /// Class labels, one per row.
    pub y: Vec<usize>,
    /// The rows of the dataset's `x_train` these examples are, in increasing order
    /// (e.g. to take sub-blocks of a kernel matrix computed once on the whole training set).
    pub indices: Vec<usize>,
}

impl Examples {
    /// The number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

impl Dataset {
    /// Splits the training set into (train, validation), stratified by class and seeded;
    /// the test set is untouched.
    ///
    /// Each class with n_c training examples sends min(round(fraction · n_c), n_c − 1) of
    /// them, chosen uniformly by a `StdRng` seeded with `seed`, to validation, so every class
    /// present keeps at least one training example. Both parts keep the original row order.
    /// The same seed gives the same split (for a given version of `rand`).
    ///
    /// Errors: `fraction` outside the open interval (0, 1), a dataset whose labels do not
    /// match its rows, or a fraction so small that validation would be empty.
    pub fn split_validation(&self, fraction: f64, seed: u64) -> Result<(Examples, Examples)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::InvalidArgument {
                name: "fraction",
                value: fraction.to_string(),
                reason: "the validation fraction must lie strictly between 0 and 1".into(),
            });
        }
        check::dim(
            "labels in y_train (one per row of x_train)",
            self.x_train.nrows(),
            self.y_train.len(),
        )?;
        let classes = self.y_train.iter().max().map_or(0, |m| m + 1);
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
        for (i, &label) in self.y_train.iter().enumerate() {
            by_class[label].push(i);
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut in_validation = vec![false; self.y_train.len()];
        for members in &mut by_class {
            let n = members.len();
            if n == 0 {
                continue;
            }
            let take = ((fraction * n as f64).round() as usize).min(n - 1);
            members.shuffle(&mut rng);
            for &i in &members[..take] {
                in_validation[i] = true;
            }
        }
        let (validation, train): (Vec<usize>, Vec<usize>) =
            (0..self.y_train.len()).partition(|&i| in_validation[i]);
        if validation.is_empty() {
            return Err(Error::InvalidArgument {
                name: "fraction",
                value: fraction.to_string(),
                reason: format!(
                    "no class of the {} training examples gets a validation example; use a larger fraction",
                    self.y_train.len()
                ),
            });
        }
        let part = |indices: Vec<usize>| Examples {
            x: self.x_train.select(Axis(0), &indices),
            y: indices.iter().map(|&i| self.y_train[i]).collect(),
            indices,
        };
        Ok((part(train), part(validation)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_disjoint_and_complete() {
        let digits = Dataset::embedded("digits").unwrap();
        let (train, val) = digits.split_validation(0.2, 11).unwrap();
        assert_eq!(train.len() + val.len(), digits.y_train.len());
        let mut all: Vec<usize> = train.indices.iter().chain(&val.indices).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..digits.y_train.len()).collect::<Vec<_>>());
        for part in [&train, &val] {
            assert!(part.indices.windows(2).all(|w| w[0] < w[1]));
            for (r, &i) in part.indices.iter().enumerate() {
                assert_eq!(part.y[r], digits.y_train[i]);
                assert_eq!(part.x.row(r), digits.x_train.row(i));
            }
        }
        // stratified: each class sends exactly round(0.2 · n_c) examples to validation
        // (digits train has 126..132 per class, so 25 or 26 each)
        for c in 0..digits.classes {
            let n_c = digits.y_train.iter().filter(|&&l| l == c).count();
            let v_c = val.y.iter().filter(|&&l| l == c).count();
            assert_eq!(v_c, (0.2 * n_c as f64).round() as usize, "class {c}");
        }
    }

    #[test]
    fn split_is_deterministic_per_seed() {
        let wine = Dataset::embedded("wine").unwrap();
        let a = wine.split_validation(0.25, 3).unwrap();
        let b = wine.split_validation(0.25, 3).unwrap();
        let c = wine.split_validation(0.25, 4).unwrap();
        assert_eq!(a, b);
        // 118 examples, ~30 in validation: two seeds choosing the same subset has
        // probability ~ Π_c 1/C(n_c, k_c) < 1e-20
        assert_ne!(a.1.indices, c.1.indices);
    }

    #[test]
    fn split_keeps_a_training_example_per_class_and_rejects_bad_fractions() {
        let data = Dataset::new(
            "tiny",
            Array2::from_shape_fn((5, 1), |(i, _)| i as f64),
            vec![0, 0, 0, 0, 1],
            Array2::zeros((1, 1)),
            vec![0],
        )
        .unwrap();
        let (train, val) = data.split_validation(0.5, 0).unwrap();
        assert_eq!(val.y, vec![0, 0]); // round(0.5·4) = 2 of class 0, min(round(0.5), 0) of class 1
        assert_eq!(train.y.iter().filter(|&&l| l == 1).count(), 1);
        for f in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(matches!(
                data.split_validation(f, 0),
                Err(Error::InvalidArgument {
                    name: "fraction",
                    ..
                })
            ));
        }
        // 0.05 · 4 rounds to 0 in every class: validation would be empty
        assert!(data.split_validation(0.05, 0).is_err());
    }
}
