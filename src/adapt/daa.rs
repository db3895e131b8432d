//! Dual adversarial adaptation (Su et al., TOIS 2024) and its single-critic ablations.
//! Each critic is paired with the features it takes as real: D1 the frozen source
//! encoder's on source rows, D2 the target encoder's on source rows; the fake features are
//! always the target encoder's on target rows (the game: `game.rs`).

use super::game::{Game, Real, Role};
use super::{Method, Needs};
use crate::config::registry::{Kind, NO_PARAMS};

const D1: Role = Role {
    real: Real::FrozenSource,
    block: None,
};
const D2: Role = Role {
    real: Real::TargetOnSource,
    block: None,
};

pub const DAA: Kind<Method> = Kind::new(
    "daa",
    NO_PARAMS,
    Method {
        needs: |_| Needs::ALIGNMENT,
        build: |setup| Game::build(setup, &[D1, D2]),
    },
);

pub const DAA_SINGLE: Kind<Method> = Kind::new(
    "daa_single",
    NO_PARAMS,
    Method {
        needs: |_| Needs::ALIGNMENT,
        build: |setup| Game::build(setup, &[D1]),
    },
);

pub const DAA_D2: Kind<Method> = Kind::new(
    "daa_d2",
    NO_PARAMS,
    Method {
        needs: |_| Needs::ALIGNMENT,
        build: |setup| Game::build(setup, &[D2]),
    },
);
