//! `daa data prepare-movielens` on small fabricated files of both raw layouts (GroupLens's
//! zip and folder, RecBole's atomic files) describing the same ratings.

mod common;

use std::io::Write;
use std::path::Path;

use common::{daa, repo, stderr};

/// (user id, gender, age code, occupation, zip).
const USERS: [(u32, &str, u8, u8, &str); 8] = [
    (1, "F", 1, 10, "48067"),
    (2, "M", 18, 16, "70072"),
    (3, "M", 25, 15, "55117"),
    (4, "F", 25, 7, "02460"),
    (5, "M", 35, 20, "K1A0B1"),
    (6, "F", 45, 9, "95370"),
    (7, "M", 50, 1, "06810"),
    (8, "M", 56, 12, "32793"),
];
/// (movie id, title, genres).
const MOVIES: [(u32, &str, &[&str]); 5] = [
    (
        1,
        "Toy Story (1995)",
        &["Animation", "Children's", "Comedy"],
    ),
    (2, "Heat (1995)", &["Action", "Crime", "Thriller"]),
    (3, "Misérables, Les (1995)", &["Drama", "Musical"]),
    (4, "Blade Runner (1982)", &["Film-Noir", "Sci-Fi"]),
    (5, "Casablanca (1942)", &["Drama", "Romance", "War"]),
];
/// 2000-12-31 22:12:40 UTC, a Sunday.
const T0: i64 = 978_300_760;

/// (user, movie, rating, timestamp): each user rates every movie, an hour apart, the
/// ratings cycling 1..5; user 3's last rating comes a day later.
fn ratings() -> Vec<(u32, u32, u8, i64)> {
    let mut out = Vec::new();
    for (u, ..) in USERS {
        for (m, ..) in MOVIES {
            let rating = ((u + m) % 5 + 1) as u8;
            let late = if u == 3 && m == 5 { 86_400 } else { 0 };
            out.push((u, m, rating, T0 + 3600 * i64::from(u * 5 + m) + late));
        }
    }
    out
}

fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect()
}

fn grouplens_files() -> Vec<(&'static str, Vec<u8>)> {
    let users: String = USERS
        .iter()
        .map(|(id, g, a, o, z)| format!("{id}::{g}::{a}::{o}::{z}\n"))
        .collect();
    let movies: String = MOVIES
        .iter()
        .map(|(id, t, g)| format!("{id}::{t}::{}\n", g.join("|")))
        .collect();
    let ratings: String = ratings()
        .iter()
        .map(|(u, m, r, t)| format!("{u}::{m}::{r}::{t}\n"))
        .collect();
    vec![
        ("users.dat", latin1(&users)),
        ("movies.dat", latin1(&movies)),
        ("ratings.dat", latin1(&ratings)),
    ]
}

fn recbole_files() -> Vec<(&'static str, Vec<u8>)> {
    let title = |m: u32| MOVIES.iter().find(|x| x.0 == m).unwrap().1;
    let mut users =
        String::from("user_id:token\tage:float\tgender:token\toccupation:float\tzip_code:token\n");
    for (id, g, a, o, z) in USERS {
        users.push_str(&format!("1m_{id}\t{a}\t{g}\t{o}\t{z}\n"));
    }
    let mut items =
        String::from("item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\n");
    for (_, t, g) in MOVIES {
        let year = &t[t.len() - 5..t.len() - 1];
        items.push_str(&format!(
            "{t}\t{}\t{year}\t{}\n",
            &t[..t.len() - 7],
            g.join(" ")
        ));
    }
    let mut inter = String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
    for (u, m, r, t) in ratings() {
        inter.push_str(&format!("1m_{u}\t{}\t{r}\t{t}\n", title(m)));
    }
    vec![
        ("ml-1m.user", users.into_bytes()),
        ("ml-1m.item", items.into_bytes()),
        ("ml-1m.inter", inter.into_bytes()),
    ]
}

fn write_folder(dir: &Path, files: &[(&str, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn write_zip(path: &Path, files: &[(&str, Vec<u8>)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in files {
        z.start_file(
            format!("ml-1m/{name}"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

fn prepare(dir: &Path, raw: &Path, out: &str) -> std::process::Output {
    daa(
        dir,
        &[
            "data",
            "prepare-movielens",
            "--raw",
            raw.to_str().unwrap(),
            "--out",
            out,
        ],
        &[],
    )
}

/// Every prepared file under `out`, by relative path.
fn outputs(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for domain in ["source", "young", "mid", "senior"] {
        for split in ["train", "test"] {
            let name = format!("{domain}/{split}.csv");
            files.push((name.clone(), std::fs::read(out.join(&name)).unwrap()));
        }
    }
    files
}

#[test]
fn both_layouts_give_the_same_bytes_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_zip(&root.join("ml-1m.zip"), &grouplens_files());
    write_folder(&root.join("grouplens"), &grouplens_files());
    write_folder(&root.join("recbole"), &recbole_files());
    for (raw, out) in [
        ("ml-1m.zip", "zip"),
        ("ml-1m.zip", "zip_again"),
        ("grouplens", "folder"),
        ("recbole", "recbole"),
        ("recbole/ml-1m.inter", "recbole_file"),
    ] {
        let result = prepare(root, &root.join(raw), out);
        assert!(result.status.success(), "{raw}: {}", stderr(&result));
    }
    let first = outputs(&root.join("zip"));
    for other in ["zip_again", "folder", "recbole", "recbole_file"] {
        assert!(
            outputs(&root.join(other)) == first,
            "{other} differs from the zip's"
        );
    }
}

#[test]
fn domains_split_by_time_and_label_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    write_zip(&dir.path().join("ml-1m.zip"), &grouplens_files());
    let result = prepare(dir.path(), &dir.path().join("ml-1m.zip"), "out");
    assert!(result.status.success(), "{}", stderr(&result));
    let out = dir.path().join("out");
    let rows = |domain: &str, split: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(out.join(domain).join(format!("{split}.csv")))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    // Users per domain: source 3, 4; young 1, 2; mid 5; senior 6, 7, 8; five ratings each.
    for (domain, users) in [("source", 2), ("young", 2), ("mid", 1), ("senior", 3)] {
        let n = users * 5;
        assert_eq!(rows(domain, "train").len(), n - n / 5, "{domain}");
        assert_eq!(rows(domain, "test").len(), n / 5, "{domain}");
    }
    // The source's latest two ratings: user 4's last (T0 + 25 h) and user 3's day-late one.
    let test = rows("source", "test");
    // Movies are numbered by sorted title: Blade Runner 1, Casablanca 2, Heat 3,
    // Misérables 4, Toy Story 5.
    assert_eq!(
        test[0][0], "u4m2",
        "user 4 rates Casablanca (raw id 5) at T0 + 25 h"
    );
    let late = &test[1];
    assert_eq!(late[0], "u3m2", "user 3's Casablanca, a day late");
    // Casablanca by user 3: rating (3 + 5) % 5 + 1 = 4: like, not love. Time T0 + 20 h +
    // 1 day: 2001-01-02 18:12 UTC, a Tuesday (weekday 1 from Monday 0).
    let header: Vec<String> = daa::data::movielens::processed_header()
        .split(',')
        .map(String::from)
        .collect();
    let field =
        |row: &Vec<String>, name: &str| row[header.iter().position(|h| h == name).unwrap()].clone();
    assert_eq!(field(late, "like"), "1");
    assert_eq!(field(late, "love"), "0");
    assert_eq!(field(late, "hour"), "18");
    assert_eq!(field(late, "weekday"), "1");
    assert_eq!(field(late, "decade"), "3", "1942: the 1940s, 1910s being 0");
    assert_eq!(field(late, "age"), "2", "code 25 is the third age group");
    assert_eq!(field(late, "genre_war"), "1");
    assert_eq!(field(late, "genre_action"), "0");
    // User 5's zip K1A0B1 starts with no digit: region 10.
    let mid = rows("mid", "train");
    assert!(mid.iter().all(|r| field(r, "zip_region") == "10"));

    // The files pass the registry schema's checks.
    let registry = daa::catalog::registry(repo().join("registry"));
    let schema =
        daa::data::dataset::schema(&registry.entry("schemas", "movielens").unwrap().params)
            .unwrap();
    for domain in ["source", "young", "mid", "senior"] {
        for split in ["train", "test"] {
            let path = out.join(domain).join(format!("{split}.csv"));
            let table = daa::data::cache::load_csv(&path, &schema).unwrap().table;
            assert_eq!(table.rows(), rows(domain, split).len());
        }
    }
}

#[test]
fn a_bad_line_of_each_layout_names_the_file_and_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut grouplens = grouplens_files();
    grouplens[2].1.extend_from_slice(b"1::1::5\n");
    write_folder(&root.join("short"), &grouplens);
    let mut ages = grouplens_files();
    ages[0].1 = latin1("1::F::30::10::48067\n");
    write_folder(&root.join("ages"), &ages);
    let mut recbole = recbole_files();
    recbole[2]
        .1
        .extend_from_slice(b"1m_1\tHeat (1995)\tfive\t978300760\n");
    write_folder(&root.join("recbole"), &recbole);
    let mut unknown = recbole_files();
    unknown[2]
        .1
        .extend_from_slice(b"1m_1\tNo Such Movie (1999)\t3\t978300760\n");
    write_folder(&root.join("unknown"), &unknown);
    for (raw, expected) in [
        (
            "short",
            vec![
                "ratings.dat:41:",
                "expected UserID::MovieID::Rating::Timestamp",
            ],
        ),
        ("ages", vec!["users.dat:1:", "age code 30"]),
        ("recbole", vec!["ml-1m.inter:42:", "rating `five`"]),
        (
            "unknown",
            vec![
                "ml-1m.inter:42:",
                "`No Such Movie (1999)` is not in ml-1m.item",
            ],
        ),
        ("nowhere", vec!["nowhere: no such file", "ml-1m.zip"]),
    ] {
        let out = format!("out_{raw}");
        let result = prepare(root, &root.join(raw), &out);
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{raw}: {err}");
        for piece in expected {
            assert!(err.contains(piece), "{raw}: expected `{piece}` in {err}");
        }
        assert!(!root.join(&out).exists(), "{raw}: nothing written");
    }
}

#[test]
fn genre_domains_split_the_movies_and_share_the_users() {
    let dir = tempfile::tempdir().unwrap();
    write_zip(&dir.path().join("ml-1m.zip"), &grouplens_files());
    let out = daa(
        dir.path(),
        &[
            "data",
            "prepare-movielens",
            "--raw",
            dir.path().join("ml-1m.zip").to_str().unwrap(),
            "--out",
            "genre",
            "--domains",
            "genre",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = |domain: &str| -> Vec<String> {
        ["train", "test"]
            .iter()
            .flat_map(|split| {
                let path = dir
                    .path()
                    .join("genre")
                    .join(domain)
                    .join(format!("{split}.csv"));
                std::fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .skip(1)
                    .map(|l| l.split(',').next().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    // Toy Story (movie 5 by sorted title) is the only Children's movie and no movie is
    // Horror: the children domain is its 8 ratings, one per user; the source the other 32.
    let children = ids("children");
    assert_eq!(children.len(), 8);
    assert!(children.iter().all(|id| id.ends_with("m5")), "{children:?}");
    let users: std::collections::BTreeSet<&str> = children
        .iter()
        .map(|id| id.split('m').next().unwrap())
        .collect();
    assert_eq!(users.len(), 8, "every user is in the genre domain");
    let source = ids("source");
    assert_eq!(source.len(), 32);
    assert!(
        !source.iter().any(|id| id.ends_with("m5")),
        "movies are disjoint"
    );
    assert!(ids("horror").is_empty());
}
