//! Test support: neural-tangents' reference kernels (tests/fixtures/nt_kernels.json) and the
//! fully-connected recursion of docs/math.md §3 that reproduces them from one activation's
//! E[φφ] and E[φ'φ'] (a dependency-free reader: the file is arrays of numbers under keys).
use crate::pair::Parallel;

const NT_KERNELS: &str = include_str!("../../../tests/fixtures/nt_kernels.json");

type Matrix = Vec<Vec<f64>>;

/// One case of the fixture.
pub struct Case {
    pub x1: Matrix,
    pub x2: Matrix,
    pub nngp_12: Matrix,
    pub ntk_12: Matrix,
    pub nngp_11: Matrix,
    pub ntk_11: Matrix,
}

/// Largest per-entry error relative to the largest |entry| of its matrix, off and on the
/// diagonal of the `_11` matrices.
#[derive(Debug, Default)]
pub struct Errors {
    pub off_diagonal: f64,
    pub diagonal: f64,
}

impl Case {
    pub fn load(name: &str) -> Case {
        let start = NT_KERNELS
            .find(&format!("\"name\": \"{name}\""))
            .unwrap_or_else(|| panic!("case {name} not in nt_kernels.json"));
        let text = &NT_KERNELS[start..];
        let get = |key: &str| -> Matrix {
            let at = text.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
            let mut pos = at;
            match parse(text.as_bytes(), &mut pos) {
                Json::Array(rows) => rows
                    .into_iter()
                    .map(|r| match r {
                        Json::Array(v) => v
                            .into_iter()
                            .map(|x| match x {
                                Json::Number(x) => x,
                                Json::Array(_) => panic!("{key}: not a matrix"),
                            })
                            .collect(),
                        Json::Number(_) => panic!("{key}: not a matrix"),
                    })
                    .collect(),
                Json::Number(_) => panic!("{key}: not a matrix"),
            }
        };
        Case {
            x1: get("x1"),
            x2: get("x2"),
            nngp_12: get("nngp_12"),
            ntk_12: get("ntk_12"),
            nngp_11: get("nngp_11"),
            ntk_11: get("ntk_11"),
        }
    }
}

enum Json {
    Number(f64),
    Array(Vec<Json>),
}

fn parse(s: &[u8], pos: &mut usize) -> Json {
    while s[*pos].is_ascii_whitespace() {
        *pos += 1;
    }
    if s[*pos] == b'[' {
        *pos += 1;
        let mut items = Vec::new();
        loop {
            while s[*pos].is_ascii_whitespace() || s[*pos] == b',' {
                *pos += 1;
            }
            if s[*pos] == b']' {
                *pos += 1;
                return Json::Array(items);
            }
            items.push(parse(s, pos));
        }
    }
    let begin = *pos;
    while matches!(s[*pos], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
        *pos += 1;
    }
    let token = std::str::from_utf8(&s[begin..*pos]).unwrap();
    Json::Number(
        token
            .parse()
            .unwrap_or_else(|_| panic!("bad number {token}")),
    )
}

/// NNGP and NTK of `dense(w₁, b₁) φ dense(w₂, b₂) φ … dense(w_L, b_L)` (NTK
/// parameterization, K⁰ = x·x'/d; docs/math.md §3) for every pair of the case, compared
/// with the reference. `act(a, b, c, parallel)` returns (E[φφ], E[φ'φ']).
pub fn network_kernels(
    case: &Case,
    dense: &[(f64, f64)],
    act: impl Fn(f64, f64, f64, Parallel) -> (f64, f64),
) -> Errors {
    let dot =
        |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>() / x.len() as f64;
    // (nngp, ntk) of one pair; `same`: the pair is a point with itself.
    let pair = |x: &[f64], y: &[f64], same: bool| -> (f64, f64) {
        let (mut a, mut b, mut c) = (dot(x, x), dot(y, y), dot(x, y));
        let mut theta = 0.0;
        for (l, &(w, bias)) in dense.iter().enumerate() {
            let (w2, b2) = (w * w, bias * bias);
            a = w2 * a + b2;
            b = w2 * b + b2;
            c = w2 * c + b2;
            theta = c + w2 * theta;
            if l + 1 < dense.len() {
                let par = if same {
                    Parallel::Positive
                } else {
                    Parallel::Unknown
                };
                let (phi, dphi) = act(a, b, c, par);
                let (phi_a, _) = act(a, a, a, Parallel::Positive);
                let (phi_b, _) = act(b, b, b, Parallel::Positive);
                c = phi;
                theta *= dphi;
                a = phi_a;
                b = phi_b;
            }
        }
        (c, theta)
    };
    let mut errors = Errors::default();
    let check = |ours: &Matrix, reference: &Matrix, diagonal: bool, errors: &mut Errors| {
        let scale = reference
            .iter()
            .flatten()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, row) in reference.iter().enumerate() {
            for (j, &r) in row.iter().enumerate() {
                let e = (ours[i][j] - r).abs() / scale;
                if diagonal && i == j {
                    errors.diagonal = errors.diagonal.max(e);
                } else {
                    errors.off_diagonal = errors.off_diagonal.max(e);
                }
            }
        }
    };
    for (xs, ys, nngp, ntk, diagonal) in [
        (&case.x1, &case.x2, &case.nngp_12, &case.ntk_12, false),
        (&case.x1, &case.x1, &case.nngp_11, &case.ntk_11, true),
    ] {
        let kernels: Vec<Vec<(f64, f64)>> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                ys.iter()
                    .enumerate()
                    .map(|(j, y)| pair(x, y, diagonal && i == j))
                    .collect()
            })
            .collect();
        let ours_nngp: Matrix = kernels
            .iter()
            .map(|r| r.iter().map(|k| k.0).collect())
            .collect();
        let ours_ntk: Matrix = kernels
            .iter()
            .map(|r| r.iter().map(|k| k.1).collect())
            .collect();
        check(&ours_nngp, nngp, diagonal, &mut errors);
        check(&ours_ntk, ntk, diagonal, &mut errors);
    }
    errors
}
