//! Task-adversarial adaptation (Su et al., ACM MM 2023; TL-UESTC/TAA): one critic per
//! task, each comparing the target encoder's task feature on source rows (real) with its
//! task feature on target rows (fake), in the WGAN-GP game of `game.rs`. A backbone whose
//! feature is one per task (MMoE's tower inputs, PLE's, AITM's, ...) gives each critic its
//! task's block; one with a single shared feature (SharedBottom, OMoE) gives every critic
//! all of it, as the released code does. Where we differ from the released code, see
//! REFERENCE.md ("TAA").

use super::game::{Game, Real, Role};
use super::{Method, Needs};
use crate::config::registry::{Kind, NO_PARAMS};

pub const TAA: Kind<Method> = Kind::new(
    "taa",
    NO_PARAMS,
    Method {
        needs: |_| Needs::ALIGNMENT,
        build: |setup| {
            let tasks = setup.schema.labels.len();
            let per_task = setup.feature_blocks == tasks && tasks > 1;
            let roles: Vec<Role> = (0..tasks)
                .map(|t| Role {
                    real: Real::TargetOnSource,
                    block: per_task.then_some(t),
                })
                .collect();
            Game::build(setup, &roles)
        },
    },
);
