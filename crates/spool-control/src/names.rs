//! Generated job names, in Azure ML's style (`calm_river_k3x9b2qz`).

use rand::Rng;

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "cool", "eager", "gentle", "happy", "jolly", "keen",
    "lively", "lucid", "mellow", "nimble", "plucky", "quiet", "shiny", "steady", "sunny", "witty",
];
const NOUNS: &[&str] = &[
    "apple", "brook", "cloud", "comet", "dune", "ember", "fern", "garden", "harbor", "island",
    "lake", "maple", "meadow", "orbit", "pebble", "river", "spark", "stone", "tiger", "willow",
];

/// Returns a fresh job name.
pub fn job_name() -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..8)
        .map(|_| {
            let n = rng.random_range(0..36u32);
            char::from_digit(n, 36).expect("digit below 36")
        })
        .collect();
    format!(
        "{}_{}_{suffix}",
        ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
        NOUNS[rng.random_range(0..NOUNS.len())]
    )
}
