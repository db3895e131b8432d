//! The configuration system: every shipped file resolves, inheritance and overrides apply
//! in the documented order, bad input is reported with its file and key, hashes are stable.

mod common;

use std::path::Path;

use common::{copy_tree, daa, experiment, project, repo, stderr, stdout};
use daa::config::Registry;
use daa::config::{Overrides, resolve};

fn registry() -> Registry {
    daa::catalog::registry(repo().join("registry"))
}

fn resolve_with(path: &Path, env: &[(&str, &str)], sets: &[&str]) -> daa::config::Resolved {
    let overrides = Overrides {
        files: vec![],
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        sets: sets.iter().map(|s| daa::config::Set::flag(*s)).collect(),
    };
    resolve(path, &overrides, &registry()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn toml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.ends_with("profiles") {
            files.extend(toml_files(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn every_backbone_target_config_resolves_to_its_backbone() {
    // `configs/<backbone>_<target>.toml` and `configs/movielens/<backbone>_<target>.toml`:
    // the MovieLens ones extend both a backbone and `data.toml`, which both extend
    // `base.toml` (applied once, first, so that it cannot undo the backbone).
    let mut checked = 0;
    for path in toml_files(&repo().join("configs")) {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let Some((backbone, _)) = stem.split_once('_') else {
            continue;
        };
        if !repo()
            .join(format!("registry/backbones/{backbone}.toml"))
            .is_file()
        {
            continue;
        }
        let exp = resolve_with(&path, &[], &[]).experiment;
        assert_eq!(exp.model.backbone.name, backbone, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 4 * daa::models::BACKBONES.len(), "{checked}");
    // Every backbone of the table has its experiment on each AliExpress-like target.
    for backbone in daa::models::BACKBONES.iter().map(|k| k.name) {
        for target in ["nl", "es", "fr", "us"] {
            let path = repo().join(format!("configs/{backbone}_{target}.toml"));
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
}

#[test]
fn a_file_extended_twice_is_applied_once_where_it_first_appears() {
    let dir = project(&[
        ("base.toml", &experiment("[train]\nseed = 1\n")),
        ("a.toml", "extends = [\"base.toml\"]\n[train]\nseed = 2\n"),
        ("b.toml", "extends = [\"base.toml\"]\n[train]\nepochs = 7\n"),
        ("x.toml", "extends = [\"a.toml\", \"b.toml\"]\n"),
    ]);
    let exp = resolve_with(&dir.path().join("x.toml"), &[], &[]).experiment;
    assert_eq!(exp.train.seed, 2, "b's copy of base does not undo a's seed");
    assert_eq!(exp.train.epochs, 7);
}

#[test]
fn every_shipped_config_and_registry_entry_resolves() {
    let configs = toml_files(&repo().join("configs"));
    assert!(
        configs.len() >= 7 * 4 + 5,
        "expected every backbone x target and the ablations"
    );
    for path in &configs {
        resolve_with(path, &[], &[]);
    }
    for profile in toml_files(&repo().join("configs/profiles")) {
        for base in [
            "configs/mmoe_nl.toml",
            "configs/sharedbottom_us.toml",
            "configs/ablations/single_critic.toml",
        ] {
            let overrides = Overrides {
                files: vec![profile.clone()],
                ..Overrides::default()
            };
            resolve(&repo().join(base), &overrides, &registry())
                .unwrap_or_else(|e| panic!("{base} + {}: {e}", profile.display()));
        }
    }
    let registry = registry();
    let mut entries = 0;
    for dir in daa::catalog::CATALOG.directories {
        for name in registry.names(dir.name) {
            registry
                .entry(dir.name, &name)
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.name));
            entries += 1;
        }
    }
    let shipped = [7, 1, 10, 1, 2, 3].iter().sum::<usize>();
    assert!(entries >= shipped, "{entries} registry entries");
}

#[test]
fn per_backbone_reference_values_apply() {
    let ple = resolve_with(&repo().join("configs/ple_us.toml"), &[], &[]).experiment;
    assert_eq!(ple.optim.weight_decay, 1e-2);
    assert_eq!(ple.data.target.name, "synthetic_us");
    let omoe = resolve_with(&repo().join("configs/omoe_fr.toml"), &[], &[]).experiment;
    assert_eq!(omoe.adapt.critic.params["lr"], 0.1);
    assert_eq!(
        omoe.adapt.critic.params["n_critic"], 5,
        "inline override keeps the entry's other keys"
    );
    let sb = resolve_with(&repo().join("configs/sharedbottom_nl.toml"), &[], &[]).experiment;
    assert_eq!(sb.adapt.weights.params["adversarial"], 0.5);
    let mmoe = resolve_with(&repo().join("configs/mmoe_nl.toml"), &[], &[]).experiment;
    assert_eq!(mmoe.optim.weight_decay, 1e-3);
    assert_eq!(mmoe.model.backbone.params["experts"], 8);
}

#[test]
fn each_ablation_is_its_main_experiment_with_one_change() {
    let main = resolve_with(&repo().join("configs/mmoe_nl.toml"), &[], &[]).experiment;
    let ablation = |name: &str| {
        resolve_with(&repo().join("configs/ablations").join(name), &[], &[]).experiment
    };

    let single = ablation("single_critic.toml");
    assert_eq!(
        (
            single.adapt.method.name.as_str(),
            single.adapt.method.kind.as_str()
        ),
        ("daa_single", "daa_single")
    );
    let mut expected = main.clone();
    expected.adapt.method = single.adapt.method.clone();
    assert_eq!(single, expected);

    let mut expected = main.clone();
    expected.data.target_rate = 0.01;
    assert_eq!(ablation("target_rate_001.toml"), expected);

    let half = ablation("adversarial_half.toml");
    assert_eq!(half.adapt.weights.params["adversarial"], 0.5);
    assert_eq!(
        half.adapt.weights.params["tasks"],
        serde_json::json!([1.0, 1.0])
    );
    assert_eq!(half.model, main.model);

    assert_eq!(
        ablation("no_adversarial.toml").adapt.weights.params["adversarial"],
        0.0
    );
    let released = ablation("released_critic.toml");
    assert_eq!(released.adapt.critic.params["head"], "log_softmax");
    assert_eq!(
        released.adapt.critic.params["lr"],
        main.adapt.critic.params["lr"]
    );
}

#[test]
fn config_show_prints_inherited_keys_and_the_change_with_origins() {
    let out = daa(
        &repo(),
        &[
            "config",
            "show",
            "configs/ablations/single_critic.toml",
            "--origin",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
            .to_string()
    };
    assert!(line("use = \"daa_single\"").ends_with("# configs/ablations/single_critic.toml"));
    assert!(line("lr = 0.0001").ends_with("# configs/base.toml"));
    assert!(line("experts = 8").ends_with("# registry/backbones/mmoe.toml"));
    assert!(line("use = \"mmoe\"").ends_with("# configs/backbones/mmoe.toml"));
    assert!(line("use = \"synthetic_nl\"").ends_with("# configs/mmoe_nl.toml"));

    let plain = stdout(&daa(
        &repo(),
        &["config", "show", "configs/ablations/single_critic.toml"],
        &[],
    ));
    assert!(plain.contains("[adapt.method]\n") && plain.contains("use = \"daa_single\"\n"));
    assert!(!plain.contains("# configs/base.toml"));
}

#[test]
fn environment_beats_files_and_set_beats_environment() {
    let dir = project(&[("x.toml", &experiment("[train]\nseed = 3\n"))]);
    let path = dir.path().join("x.toml");
    assert_eq!(resolve_with(&path, &[], &[]).experiment.train.seed, 3);
    let env = [
        ("DAA_TRAIN__SEED", "5"),
        ("DAA_ADAPT__WEIGHTS__ADVERSARIAL", "0.25"),
    ];
    let resolved = resolve_with(&path, &env, &[]);
    assert_eq!(resolved.experiment.train.seed, 5);
    assert_eq!(
        resolved.experiment.adapt.weights.params["adversarial"],
        0.25
    );
    let resolved = resolve_with(&path, &env, &["train.seed=7", "model.backbone=ple"]);
    assert_eq!(resolved.experiment.train.seed, 7);
    assert_eq!(resolved.experiment.model.backbone.kind, "ple");

    let out = daa(
        dir.path(),
        &[
            "config",
            "show",
            "x.toml",
            "--origin",
            "--set",
            "train.seed=9",
        ],
        &[("DAA_TRAIN__SEED", "5"), ("DAA_TRAIN__PATIENCE", "4")],
    );
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("seed = 9") && l.ends_with("# --set train.seed=9")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("patience = 4")
            && l.ends_with("# environment variable DAA_TRAIN__PATIENCE")),
        "{text}"
    );
}

#[test]
fn tables_merge_deeply_and_arrays_replace() {
    let dir = project(&[
        (
            "parent.toml",
            &experiment("[model]\nbackbone = { use = \"mmoe\", tower_dims = [32, 16, 8] }\n"),
        ),
        (
            "child.toml",
            "extends = [\"parent.toml\"]\n[model.backbone]\ntower_dims = [4]\ndropout = 0.1\n",
        ),
    ]);
    let backbone = resolve_with(&dir.path().join("child.toml"), &[], &[])
        .experiment
        .model
        .backbone;
    assert_eq!(backbone.params["tower_dims"], serde_json::json!([4]));
    assert_eq!(backbone.params["dropout"], 0.1);
    assert_eq!(backbone.params["experts"], 8);
}

#[test]
fn hash_ignores_key_order_and_where_a_value_is_set() {
    let one = project(&[(
        "a.toml",
        &experiment("[train]\nseed = 4\nepochs = 3\n[optim]\nlr = 0.01\n"),
    )]);
    let two = project(&[
        (
            "parent.toml",
            &experiment("[optim]\nlr = 0.01\n[train]\nepochs = 3\n"),
        ),
        (
            "a.toml",
            "extends = [\"parent.toml\"]\n\n[train]\n  seed   =   4\n",
        ),
    ]);
    let three = project(&[(
        "a.toml",
        &experiment("[optim]\nlr = 1e-2\n[train]\nepochs = 3\nseed = 4\n"),
    )]);
    let hash = |dir: &tempfile::TempDir| resolve_with(&dir.path().join("a.toml"), &[], &[]).hash;
    assert_eq!(hash(&one), hash(&two));
    assert_eq!(hash(&one), hash(&three));
    let base = resolve_with(
        &repo().join("configs/base.toml"),
        &[],
        &["model.backbone=mmoe"],
    )
    .hash;
    assert_ne!(hash(&one), base);
    assert_eq!(hash(&one).len(), 16);
}

/// Runs `config show` on `files[0]` in a fresh project; returns stderr after checking exit 2.
fn fails(files: &[(&str, &str)], extra: &[&str]) -> String {
    let dir = project(files);
    let mut args = vec!["config", "show", files[0].0];
    args.extend_from_slice(extra);
    let out = daa(dir.path(), &args, &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "no half output on error");
    stderr(&out)
}

#[test]
fn unknown_key_names_file_key_and_suggestion() {
    let err = fails(&[("x.toml", &experiment("[train]\npaitence = 3\n"))], &[]);
    assert!(err.contains("x.toml"), "{err}");
    assert!(err.contains("unknown key `train.paitence`"), "{err}");
    assert!(err.contains("did you mean `train.patience`"), "{err}");

    let err = fails(
        &[(
            "x.toml",
            &experiment("[model]\nbackbone = { use = \"mmoe\", expert = 4 }\n"),
        )],
        &[],
    );
    assert!(
        err.contains("unknown key `model.backbone.expert`")
            && err.contains("`model.backbone.experts`"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_key_and_expected_type() {
    let err = fails(&[("x.toml", &experiment("[train]\nseed = \"one\"\n"))], &[]);
    assert!(
        err.contains("x.toml") && err.contains("`train.seed`") && err.contains("expected u64"),
        "{err}"
    );
}

#[test]
fn out_of_range_values_are_rejected() {
    let err = fails(
        &[("x.toml", &experiment("[data]\ntarget_rate = 1.5\n"))],
        &[],
    );
    assert!(
        err.contains("x.toml") && err.contains("`data.target_rate`") && err.contains("(0, 1]"),
        "{err}"
    );
    let err = fails(
        &[(
            "x.toml",
            &experiment("[model]\nbackbone = { use = \"ple\", dropout = 1.0 }\n"),
        )],
        &[],
    );
    assert!(err.contains("`model.backbone.dropout`"), "{err}");
    let err = fails(
        &[("x.toml", &experiment("[train]\ndevice = \"gpu\"\n"))],
        &[],
    );
    assert!(
        err.contains("`train.device`") && err.contains("cuda:N"),
        "{err}"
    );
    let err = fails(
        &[("x.toml", &experiment("[adapt]\nmethod = \"dual\"\n"))],
        &[],
    );
    assert!(
        err.contains("`adapt.method`") && err.contains("daa_single"),
        "{err}"
    );
}

#[test]
fn an_infinite_or_nan_value_is_refused_naming_its_key_never_dropped_or_a_panic() {
    // JSON has no infinity: an infinite value would serialize as null, so that reading the
    // parameters back panics or the hash loses the key and reuses the default's run.
    for (set, key) in [
        ("adapt.critic.lr=inf", "adapt.critic.lr"),
        ("adapt.critic.weight_decay=inf", "adapt.critic.weight_decay"),
        (
            "adapt.critic.penalty_weight=-inf",
            "adapt.critic.penalty_weight",
        ),
        ("optim.lr=nan", "optim.lr"),
        (
            "model.backbone.tower_dims=[8, inf]",
            "model.backbone.tower_dims",
        ),
    ] {
        let err = fails(&[("x.toml", &experiment(""))], &["--set", set]);
        assert!(
            err.contains(&format!("--set {set}")) && err.contains(&format!("`{key}")),
            "{set}: {err}"
        );
        assert!(err.contains("not a finite number"), "{set}: {err}");
    }
    let err = fails(
        &[("x.toml", &experiment("[adapt.critic]\nlr = inf\n"))],
        &[],
    );
    assert!(
        err.contains("x.toml") && err.contains("`adapt.critic.lr`") && err.contains("finite"),
        "{err}"
    );
}

#[test]
fn a_wrong_slot_value_a_wrong_type_and_an_entry_without_kind_name_the_right_key() {
    // figment reports paths inner part first and a missing `kind` as a path: the messages
    // must name the key as the user writes it.
    let err = fails(&[("x.toml", &experiment(""))], &["--set", "data.target=1"]);
    assert!(
        err.contains("key `data.target` has the wrong type")
            && err.contains("registry/datasets entry"),
        "{err}"
    );
    let err = fails(
        &[("x.toml", &experiment(""))],
        &["--set", "model.backbone.dropout=\"x\""],
    );
    assert!(
        err.contains("key `model.backbone.dropout` has the wrong type"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("registry"), &dir.path().join("registry"));
    let entry = dir.path().join("registry/backbones/mmoe.toml");
    let text = std::fs::read_to_string(&entry).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("kind"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, text);
    std::fs::write(&entry, without).unwrap();
    std::fs::write(dir.path().join("x.toml"), experiment("")).unwrap();
    let registry = dir.path().join("registry");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_daa"))
        .current_dir(dir.path())
        .args([
            "config",
            "show",
            "x.toml",
            "--registry",
            registry.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("registry/backbones/mmoe.toml")
            && err.contains("has no `kind`")
            && err.contains("mmoe, ple"),
        "{err}"
    );
    assert!(!err.contains("kind.model"), "{err}");
}

#[test]
fn extends_cycle_is_printed() {
    let err = fails(
        &[
            ("a.toml", "extends = [\"b.toml\"]\n"),
            ("b.toml", "extends = [\"a.toml\"]\n"),
        ],
        &[],
    );
    assert!(err.contains("`extends` cycle"), "{err}");
    let cycle = err.split("cycle: ").nth(1).unwrap();
    let names: Vec<&str> = cycle
        .trim()
        .split(" -> ")
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["a.toml", "b.toml", "a.toml"], "{err}");
}

#[test]
fn missing_extends_file_names_both_files() {
    let err = fails(&[("a.toml", "extends = [\"nothere.toml\"]\n")], &[]);
    assert!(
        err.contains("a.toml: extends") && err.contains("nothere.toml"),
        "{err}"
    );
}

#[test]
fn unknown_registry_name_lists_available_entries() {
    let err = fails(
        &[("x.toml", &experiment("[model]\nbackbone = \"mmeo\"\n"))],
        &[],
    );
    assert!(
        err.contains("x.toml") && err.contains("`model.backbone`") && err.contains("`mmeo`"),
        "{err}"
    );
    let mut available: Vec<&str> = daa::models::BACKBONES.iter().map(|k| k.name).collect();
    available.sort();
    assert!(
        err.contains(&format!("available: {}", available.join(", "))),
        "{err}"
    );
    // The folder searched, and the nearest name (a transposition is one edit).
    assert!(
        err.contains("registry/backbones has no mmeo.toml") && err.contains("did you mean `mmoe`?"),
        "{err}"
    );
}

#[test]
fn malformed_set_is_rejected() {
    let file = experiment("[model]\nbackbone = \"mmoe\"\n");
    let err = fails(&[("x.toml", &file)], &["--set", "train.seed"]);
    assert!(
        err.contains("malformed override `train.seed`") && err.contains("key.path=value"),
        "{err}"
    );
    let err = fails(&[("x.toml", &file)], &["--set", "train.seed=[1,"]);
    assert!(err.contains("malformed override"), "{err}");
    let err = fails(&[("x.toml", &file)], &["--set", "train.sed=4"]);
    assert!(
        err.contains("--set train.sed=4") && err.contains("did you mean `train.seed`"),
        "{err}"
    );
}

#[test]
fn toml_syntax_errors_name_the_file_and_line() {
    let err = fails(&[("x.toml", "[train\nseed = 1\n")], &[]);
    assert!(
        err.contains("x.toml: invalid TOML") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn a_profile_that_is_not_toml_is_refused_by_position_without_quoting_it() {
    // Before: toml's message quoted the file's first line ("1 | SECRET ...").
    let file = experiment("");
    let err = fails(
        &[
            ("x.toml", &file),
            ("notes.txt", "SECRET token 1234\nmore\n"),
        ],
        &["--profile", "./notes.txt"],
    );
    assert!(
        err.contains("notes.txt: invalid TOML: line 1, column 8"),
        "{err}"
    );
    assert!(!err.contains("SECRET") && !err.contains("1234"), "{err}");
}

#[test]
fn an_io_error_says_its_reason_once() {
    // Before: "cannot read nope.toml: ... (os error 2): ... (os error 2)".
    let dir = project(&[]);
    let out = daa(dir.path(), &["config", "show", "nope.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

#[test]
fn unknown_profiles_and_tables_exit_2_listing_the_known_ones() {
    let out = daa(&repo(), &["reproduce", "table9", "--dry-run"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "available: daa_alignment, fig_sensitivity, methods, methods_tuned, shift_study, table3, table3_movielens, table4, table4_movielens, validation_rules"
        ),
        "{}",
        stderr(&out)
    );
    let out = daa(
        &repo(),
        &[
            "config",
            "show",
            "configs/mmoe_nl.toml",
            "--profile",
            "laptop",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("available: cpu, paper, smoke"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hash_covers_the_synthetic_generator_and_numerics_versions() {
    let resolved = resolve_with(&repo().join("configs/mmoe_nl.toml"), &[], &[]);
    let mut value = serde_json::to_value(&resolved.experiment).unwrap();
    value.as_object_mut().unwrap().remove("output");
    assert_ne!(resolved.hash, daa::config::digest(&value));
    for role in ["source", "target"] {
        value["data"][role]["rows_version"] = daa::data::synthetic::GENERATOR_VERSION.into();
        // Where a generated domain is cached is no part of what it is.
        let params = value["data"][role]["params"].as_object_mut().unwrap();
        assert!(
            std::path::Path::new(params["dir"].as_str().unwrap()).is_absolute(),
            "resolved against the entry's file"
        );
        params.remove("dir");
    }
    assert_ne!(resolved.hash, daa::config::digest(&value));
    value["numerics"] = daa::config::NUMERICS_VERSION.into();
    assert_ne!(resolved.hash, daa::config::digest(&value));
    // A method without hyperparameters, used by its kind's name, is hashed as that name
    // (as before methods were registry entries: their runs keep their directories).
    value["adapt"]["method"] = "daa".into();
    assert_ne!(resolved.hash, daa::config::digest(&value));
    // The kernel choice is left out where it changes nothing (the CPU, or the default):
    // runs from before the key keep their directories.
    value["train"].as_object_mut().unwrap().remove("kernels");
    assert_ne!(resolved.hash, daa::config::digest(&value));
    // So is the default selection metric (the mean AUC), for the same reason.
    value["train"]
        .as_object_mut()
        .unwrap()
        .remove("select_metric");
    assert_eq!(resolved.hash, daa::config::digest(&value));
    let joint = |set: &[&str]| resolve_with(&repo().join("configs/mmoe_nl.toml"), &[], set).hash;
    assert_eq!(
        joint(&[]),
        joint(&["train.kernels=device"]),
        "no matter on the CPU"
    );
    assert_ne!(
        joint(&["train.device=cuda:0"]),
        joint(&["train.device=cuda:0", "train.kernels=device"]),
        "daa's CUDA kernels are part of a CUDA experiment"
    );
    assert_ne!(
        joint(&["adapt.method=joint"]),
        joint(&["adapt.method=joint", "adapt.method.target_weight=2.0"]),
        "a method's hyperparameters are part of the experiment"
    );
    assert_eq!(
        resolved.experiment.model.backbone.version, 0,
        "only generators have versions"
    );
    let elsewhere = resolve_with(
        &repo().join("configs/mmoe_nl.toml"),
        &[],
        &["data.target.dir='/tmp/elsewhere'"],
    );
    assert_eq!(
        elsewhere.hash, resolved.hash,
        "the cache folder is not hashed"
    );
}

/// A CSV data set entry of registry/datasets/ with the AliExpress schema and these files.
fn csv_entry(train: &str, test: &str) -> String {
    format!(
        "extends = [\"../schemas/aliexpress.toml\"]\nkind = \"csv\"\ndescription = \"mine\"\n\
         train = \"{train}\"\ntest = \"{test}\"\n"
    )
}

#[test]
fn entry_paths_resolve_against_the_entry_file_home_or_as_absolute() {
    let entry = |train: &str| csv_entry(train, "/data/test.csv");
    let schema = std::fs::read_to_string(repo().join("registry/schemas/aliexpress.toml")).unwrap();
    let dir = project(&[
        ("registry/schemas/aliexpress.toml", &schema),
        ("registry/datasets/near.toml", &entry("../../csv/train.csv")),
        ("registry/datasets/home.toml", &entry("~/csv/train.csv")),
    ]);
    let registry = daa::catalog::registry(dir.path().join("registry"));
    let path = |name: &str, key: &str| {
        let entry = registry.entry("datasets", name).unwrap();
        std::path::PathBuf::from(entry.params[key].as_str().unwrap())
    };
    let root = std::path::absolute(dir.path()).unwrap();
    assert_eq!(path("near", "train"), root.join("csv/train.csv"));
    assert_eq!(path("near", "test"), std::path::Path::new("/data/test.csv"));
    let home = std::path::PathBuf::from(std::env::var_os("HOME").unwrap());
    assert_eq!(path("home", "train"), home.join("csv/train.csv"));
}

#[test]
fn validation_is_latest_for_rows_in_time_order_and_enters_the_hash_only_then() {
    use daa::config::schema::Validation;
    let ml = repo().join("configs/movielens/mmoe_young.toml");
    let ordered = resolve_with(&ml, &[], &[]);
    assert_eq!(ordered.experiment.validation(), Validation::Latest);
    let random = resolve_with(&ml, &[], &["data.valid='random'"]);
    assert_eq!(random.experiment.validation(), Validation::Random);
    assert_ne!(ordered.hash, random.hash);
    let latest = resolve_with(&ml, &[], &["data.valid='latest'"]);
    assert_eq!(
        latest.hash, ordered.hash,
        "the default and its explicit form agree"
    );
    // Synthetic rows are not in time order: random, and the hash of before the key.
    let synthetic = repo().join("configs/mmoe_nl.toml");
    let plain = resolve_with(&synthetic, &[], &[]);
    assert_eq!(plain.experiment.validation(), Validation::Random);
    let explicit = resolve_with(&synthetic, &[], &["data.valid='random'"]);
    assert_eq!(plain.hash, explicit.hash);
    let asked = resolve_with(&synthetic, &[], &["data.valid='latest'"]);
    assert_ne!(plain.hash, asked.hash);
}

#[test]
fn the_selection_metric_is_checked_and_the_mean_keeps_old_hashes() {
    let synthetic = repo().join("configs/mmoe_nl.toml");
    let plain = resolve_with(&synthetic, &[], &[]);
    let mean = resolve_with(&synthetic, &[], &["train.select_metric='mean'"]);
    assert_eq!(plain.hash, mean.hash);
    let click = resolve_with(&synthetic, &[], &["train.select_metric={task='click'}"]);
    assert_ne!(plain.hash, click.hash);
    let file = experiment("");
    let err = fails(
        &[("x.toml", &file)],
        &["--set", "train.select_metric={weights=[0.0, -1.0]}"],
    );
    assert!(
        err.contains("train.select_metric.weights") && err.contains("at least one positive"),
        "{err}"
    );
}

#[test]
fn a_checkout_hashes_alike_wherever_it_lies_and_its_data_files_enter_the_hash() {
    // Before: a CSV data set's files entered the hash as absolute paths, so the same
    // experiment had another hash (and run directory) in every checkout.
    let entry = |train: &str| csv_entry(train, "../../data/mine/test.csv");
    let checkout = |entries: &[(&str, String)]| {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&repo().join("registry"), &dir.path().join("registry"));
        for (name, text) in entries {
            std::fs::write(dir.path().join("registry/datasets").join(name), text).unwrap();
        }
        let config = dir.path().join("x.toml");
        std::fs::write(
            &config,
            experiment("[data]\nsource = \"mine\"\ntarget = \"theirs\"\n"),
        )
        .unwrap();
        dir
    };
    let hash = |dir: &Path| {
        let registry = daa::catalog::registry(dir.join("registry"));
        resolve(&dir.join("x.toml"), &Overrides::default(), &registry)
            .unwrap()
            .hash
    };
    let outside = entry("/data/theirs/train.csv");
    let here = checkout(&[
        ("mine.toml", entry("../../data/mine/train.csv")),
        ("theirs.toml", outside.clone()),
    ]);
    let there = checkout(&[
        ("mine.toml", entry("../../data/mine/train.csv")),
        ("theirs.toml", outside.clone()),
    ]);
    assert_ne!(here.path(), there.path());
    assert_eq!(hash(here.path()), hash(there.path()));
    // Another file inside the checkout, or another one outside it, is another experiment.
    let other_inside = checkout(&[
        ("mine.toml", entry("../../data/mine/train2.csv")),
        ("theirs.toml", outside),
    ]);
    assert_ne!(hash(here.path()), hash(other_inside.path()));
    let other_outside = checkout(&[
        ("mine.toml", entry("../../data/mine/train.csv")),
        ("theirs.toml", entry("/data/theirs/other.csv")),
    ]);
    assert_ne!(hash(here.path()), hash(other_outside.path()));
}

#[test]
fn a_data_file_re_prepared_in_place_changes_the_hash_and_its_content_restores_it() {
    // A path says nothing of the rows: re-prepared in place, they must get their own runs.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("registry"), &dir.path().join("registry"));
    let datasets = dir.path().join("registry/datasets");
    std::fs::write(
        datasets.join("mine.toml"),
        csv_entry("../../data/mine/train.csv", "../../data/mine/test.csv"),
    )
    .unwrap();
    std::fs::write(
        datasets.join("theirs.toml"),
        csv_entry("../../data/theirs/train.csv", "../../data/theirs/test.csv"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let write = |path: &str, text: &str| {
        let path = data.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    for domain in ["mine", "theirs"] {
        write(&format!("{domain}/train.csv"), "a,b\n1,2\n");
        write(&format!("{domain}/test.csv"), "a,b\n3,4\n");
    }
    let config = dir.path().join("x.toml");
    std::fs::write(
        &config,
        experiment("[data]\nsource = \"mine\"\ntarget = \"theirs\"\n"),
    )
    .unwrap();
    let hash = || {
        let registry = daa::catalog::registry(dir.path().join("registry"));
        resolve(&config, &Overrides::default(), &registry)
            .unwrap()
            .hash
    };
    let first = hash();
    assert_eq!(hash(), first, "the same content, the same hash");
    // Same size, other rows: the target's test split, then the source's training split.
    write("theirs/test.csv", "a,b\n5,6\n");
    let target_changed = hash();
    assert_ne!(target_changed, first);
    write("mine/train.csv", "a,b\n7,8\n");
    assert_ne!(
        hash(),
        target_changed,
        "the source's rows are part of a target cell"
    );
    // The original content again: the original runs.
    write("theirs/test.csv", "a,b\n3,4\n");
    write("mine/train.csv", "a,b\n1,2\n");
    assert_eq!(hash(), first);
    // A missing file hashes (its run cannot start), and differently from a present one.
    std::fs::remove_file(data.join("theirs/test.csv")).unwrap();
    assert_ne!(hash(), first);
}
