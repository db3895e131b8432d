//! MovieLens-1M as a cross-domain benchmark: users grouped by age are the domains (source
//! ages 25-34; targets `young` under 25, `mid` 35-44, `senior` 45 and over), two cascaded
//! tasks (`like`: rating >= 4; `love`: rating 5), and features of the user, the movie and
//! the time of rating (nothing derived from the rating). Per domain the last 20% of its
//! ratings in time are the test split.
//!
//! Reads GroupLens's `ml-1m.zip` (or its unpacked folder: `ratings.dat`, `users.dat`,
//! `movies.dat`, `::`-separated, latin-1) or RecBole's atomic files (`ml-1m.inter`,
//! `ml-1m.user`, `ml-1m.item`, tab-separated with typed headers; users `1m_<id>`, items
//! keyed by title). Movies are keyed by title in both, so the two give the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::DataError;

/// Domains and the ML-1M age codes of their users.
pub const DOMAINS: [(&str, &[u8]); 4] = [
    ("source", &[25]),
    ("young", &[1, 18]),
    ("mid", &[35]),
    ("senior", &[45, 50, 56]),
];
const AGES: [u8; 7] = [1, 18, 25, 35, 45, 50, 56];

/// How ratings are grouped into domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// By the user's age ([`DOMAINS`]): users disjoint, movies shared.
    Age,
    /// By the movie's genres ([`GENRE_DOMAINS`]): movies disjoint, users shared.
    Genre,
}

/// Genre domains, in order of precedence: a movie belongs to the first target whose genre
/// it has (`horror`: Horror; `children`: Children's), every other movie to `source` (the
/// large genres: Drama, Comedy, Action, ...).
pub const GENRE_DOMAINS: [(&str, Option<&str>); 3] = [
    ("source", None),
    ("horror", Some("Horror")),
    ("children", Some("Children's")),
];

impl Grouping {
    /// The domains' names, in output order.
    pub fn names(self) -> Vec<&'static str> {
        match self {
            Grouping::Age => DOMAINS.iter().map(|(name, _)| *name).collect(),
            Grouping::Genre => GENRE_DOMAINS.iter().map(|(name, _)| *name).collect(),
        }
    }

    /// The domain (an index into [`Grouping::names`]) of a rating by a user of age code
    /// `age` of a movie with `genres` (a bit per [`GENRES`] entry).
    fn domain(self, age: u8, genres: u32) -> usize {
        match self {
            Grouping::Age => DOMAINS
                .iter()
                .position(|(_, codes)| codes.contains(&age))
                .expect("every age code has a domain"),
            Grouping::Genre => GENRE_DOMAINS
                .iter()
                .position(|(_, genre)| {
                    genre.is_some_and(|g| {
                        let bit = GENRES.iter().position(|x| *x == g).expect("a genre");
                        genres & (1 << bit) != 0
                    })
                })
                .unwrap_or(0),
        }
    }
}
pub const GENRES: [&str; 18] = [
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];
/// The share of each domain's ratings, the latest in time, held out as its test split.
const TEST_SHARE: usize = 5;
/// Seconds in a mean Gregorian year.
const YEAR_SECONDS: f64 = 31_556_952.0;

/// The processed header; `registry/schemas/movielens.toml` names the same columns.
pub fn processed_header() -> String {
    let mut names: Vec<String> = [
        "rating_id",
        "user",
        "movie",
        "gender",
        "age",
        "occupation",
        "zip_region",
        "decade",
        "hour",
        "weekday",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(GENRES.iter().map(|g| format!("genre_{}", column_name(g))));
    names.extend(["movie_age".into(), "like".into(), "love".into()]);
    names.join(",")
}

fn column_name(genre: &str) -> String {
    genre
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct User {
    /// 0 female, 1 male.
    gender: u8,
    /// Index into [`AGES`].
    age: u8,
    occupation: u8,
    /// The zip code's first digit; 10 when it does not start with one.
    zip: u8,
}

#[derive(Debug, Clone)]
struct Movie {
    year: u16,
    genres: u32,
}

#[derive(Debug, Clone, Copy)]
struct Rating {
    user: u32,
    movie: u32,
    rating: u8,
    time: i64,
}

/// What one domain's preparation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub domain: String,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Positives of `like` and `love` over both splits.
    pub likes: usize,
    pub loves: usize,
    pub users: usize,
    pub movies: usize,
    pub dir: PathBuf,
}

/// The raw files, in one of the two layouts.
enum Raw {
    /// GroupLens: a zip (members under `ml-1m/`) or a folder.
    GroupLens { zip: Option<PathBuf>, dir: PathBuf },
    /// RecBole atomic files in a folder.
    RecBole { dir: PathBuf },
}

impl Raw {
    fn detect(path: &Path) -> Result<Raw, DataError> {
        let hint = " (give GroupLens's ml-1m.zip or its folder with ratings.dat, users.dat and \
                    movies.dat, or a folder with RecBole's ml-1m.inter, ml-1m.user and \
                    ml-1m.item; https://grouplens.org/datasets/movielens/1m/)";
        if path.is_file() && path.extension().is_some_and(|e| e == "zip") {
            return Ok(Raw::GroupLens {
                zip: Some(path.to_path_buf()),
                dir: PathBuf::from("ml-1m"),
            });
        }
        let dir = if path.is_file() {
            path.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            path.to_path_buf()
        };
        if dir.join("ratings.dat").is_file() {
            return Ok(Raw::GroupLens { zip: None, dir });
        }
        if dir.join("ml-1m.inter").is_file() {
            return Ok(Raw::RecBole { dir });
        }
        Err(DataError::Missing {
            path: path.to_path_buf(),
            hint: hint.into(),
        })
    }

    /// Calls `each` with the 0-based index and text of every line of raw file `name`,
    /// streamed and decoded (latin-1 for GroupLens, UTF-8 for RecBole); `each` gets the
    /// name to report errors under.
    fn for_each_line(
        &self,
        name: &str,
        mut each: impl FnMut(&Path, usize, &str) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        let latin1 = matches!(self, Raw::GroupLens { .. });
        let mut stream = |reader: &mut dyn Read, shown: &Path| -> Result<(), DataError> {
            let mut reader = BufReader::with_capacity(1 << 20, reader);
            let mut bytes = Vec::new();
            let mut index = 0;
            loop {
                bytes.clear();
                let n = reader
                    .read_until(b'\n', &mut bytes)
                    .map_err(DataError::io(shown))?;
                if n == 0 {
                    return Ok(());
                }
                let text = if latin1 {
                    bytes.iter().map(|&b| char::from(b)).collect()
                } else {
                    String::from_utf8_lossy(&bytes).into_owned()
                };
                let text = text.trim_end_matches(['\n', '\r']);
                if !text.trim().is_empty() {
                    each(shown, index, text)?;
                }
                index += 1;
            }
        };
        match self {
            Raw::GroupLens {
                zip: Some(zip),
                dir,
            } => {
                let member = format!("{}/{name}", dir.display());
                let shown = PathBuf::from(format!("{}:{member}", zip.display()));
                let corrupt = |e: zip::result::ZipError| DataError::Corrupt {
                    path: zip.clone(),
                    message: format!("{member}: {e}"),
                };
                let file = File::open(zip).map_err(DataError::io(zip))?;
                let mut archive = zip::ZipArchive::new(file).map_err(corrupt)?;
                let mut entry = archive.by_name(&member).map_err(corrupt)?;
                stream(&mut entry, &shown)
            }
            Raw::GroupLens { zip: None, dir } | Raw::RecBole { dir } => {
                let path = dir.join(name);
                let mut file = File::open(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => DataError::Missing {
                        path: path.clone(),
                        hint: " (the raw MovieLens-1M files come as a set)".into(),
                    },
                    _ => DataError::io(&path)(e),
                })?;
                stream(&mut file, &path)
            }
        }
    }
}

/// A bad raw line: the file, the 1-based line and what is wrong.
fn bad(path: &Path, index: usize, message: impl Into<String>) -> DataError {
    DataError::Row {
        path: path.to_path_buf(),
        line: index + 1,
        message: message.into(),
    }
}

fn number<T: std::str::FromStr>(
    text: &str,
    what: &str,
    path: &Path,
    index: usize,
) -> Result<T, DataError> {
    // RecBole writes its numbers as floats ("5", "1995", sometimes "5.0").
    let plain = text.trim().strip_suffix(".0").unwrap_or(text.trim());
    plain.parse().map_err(|_| {
        bad(
            path,
            index,
            format!("{what} `{text}` is not a whole number"),
        )
    })
}

fn user(
    gender: &str,
    age: &str,
    occupation: &str,
    zip: &str,
    at: (&Path, usize),
) -> Result<User, DataError> {
    let (path, index) = at;
    let gender = match gender.trim() {
        "F" => 0,
        "M" => 1,
        other => return Err(bad(path, index, format!("gender `{other}` is not F or M"))),
    };
    let code: u8 = number(age, "age", path, index)?;
    let age = AGES.iter().position(|&a| a == code).ok_or_else(|| {
        bad(
            path,
            index,
            format!("age code {code} is not one of ML-1M's 1, 18, 25, 35, 45, 50, 56"),
        )
    })? as u8;
    let occupation: u8 = number(occupation, "occupation", path, index)?;
    if occupation > 20 {
        return Err(bad(
            path,
            index,
            format!("occupation {occupation} is not in 0..=20"),
        ));
    }
    let zip = zip
        .trim()
        .bytes()
        .next()
        .filter(u8::is_ascii_digit)
        .map_or(10, |d| d - b'0');
    Ok(User {
        gender,
        age,
        occupation,
        zip,
    })
}

fn genres(names: &[&str], path: &Path, index: usize) -> Result<u32, DataError> {
    names
        .iter()
        .filter(|n| !n.is_empty())
        .try_fold(0u32, |mask, name| {
            let g = GENRES.iter().position(|g| g == name).ok_or_else(|| {
                bad(
                    path,
                    index,
                    format!("`{name}` is not one of ML-1M's 18 genres"),
                )
            })?;
            Ok(mask | 1 << g)
        })
}

/// Users by id, movies by title, ratings keyed by (user id, title).
struct Parsed {
    users: HashMap<u32, User>,
    movies: BTreeMap<String, Movie>,
    ratings: Vec<(u32, String, u8, i64)>,
}

/// The `::`-separated fields of a GroupLens line laid out as `layout` (its field names).
fn grouplens_fields<'a>(
    line: &'a str,
    layout: &str,
    path: &Path,
    i: usize,
) -> Result<Vec<&'a str>, DataError> {
    let fields: Vec<&str> = line.split("::").collect();
    let expected = layout.split("::").count();
    if fields.len() != expected {
        return Err(bad(
            path,
            i,
            format!("expected {layout}, found {} fields", fields.len()),
        ));
    }
    Ok(fields)
}

fn parse_grouplens(raw: &Raw) -> Result<Parsed, DataError> {
    let mut users = HashMap::new();
    raw.for_each_line("users.dat", |path, i, line| {
        let f = grouplens_fields(line, "UserID::Gender::Age::Occupation::Zip-code", path, i)?;
        let id: u32 = number(f[0], "user id", path, i)?;
        users.insert(id, user(f[1], f[2], f[3], f[4], (path, i))?);
        Ok(())
    })?;
    let mut titles = HashMap::new();
    let mut movies = BTreeMap::new();
    raw.for_each_line("movies.dat", |path, i, line| {
        let f = grouplens_fields(line, "MovieID::Title::Genres", path, i)?;
        let id: u32 = number(f[0], "movie id", path, i)?;
        let title = f[1].trim().to_string();
        let year = title
            .strip_suffix(')')
            .and_then(|t| t.get(t.len().saturating_sub(4)..))
            .and_then(|y| y.parse().ok())
            .ok_or_else(|| {
                bad(
                    path,
                    i,
                    format!("title `{title}` does not end in its year, as `(1995)`"),
                )
            })?;
        let names: Vec<&str> = f[2].split('|').collect();
        movies.insert(
            title.clone(),
            Movie {
                year,
                genres: genres(&names, path, i)?,
            },
        );
        titles.insert(id, title);
        Ok(())
    })?;
    let mut ratings = Vec::new();
    raw.for_each_line("ratings.dat", |path, i, line| {
        let f = grouplens_fields(line, "UserID::MovieID::Rating::Timestamp", path, i)?;
        let movie: u32 = number(f[1], "movie id", path, i)?;
        let title = titles
            .get(&movie)
            .ok_or_else(|| bad(path, i, format!("movie {movie} is not in movies.dat")))?;
        ratings.push(raw_rating(
            number(f[0], "user id", path, i)?,
            title,
            f[2],
            f[3],
            (path, i),
        )?);
        Ok(())
    })?;
    Ok(Parsed {
        users,
        movies,
        ratings,
    })
}

/// A rating as read, its value checked (1 to 5).
fn raw_rating(
    user: u32,
    title: &str,
    rating: &str,
    time: &str,
    at: (&Path, usize),
) -> Result<(u32, String, u8, i64), DataError> {
    let (path, i) = at;
    let value: u8 = number(rating, "rating", path, i)?;
    if !(1..=5).contains(&value) {
        return Err(bad(path, i, format!("rating {value} is not 1 to 5")));
    }
    Ok((
        user,
        title.to_string(),
        value,
        number(time, "timestamp", path, i)?,
    ))
}

/// The columns of a RecBole atomic file's typed header (`name:type`), by name.
fn header_columns(header: &str, wanted: &[&str], path: &Path) -> Result<Vec<usize>, DataError> {
    let names: Vec<&str> = header
        .split('\t')
        .map(|c| c.split(':').next().unwrap_or(c).trim())
        .collect();
    wanted
        .iter()
        .map(|w| {
            names.iter().position(|n| n == w).ok_or_else(|| {
                bad(
                    path,
                    0,
                    format!(
                        "the header has no `{w}` column (found: {})",
                        names.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// Calls `each` with the `wanted` columns of every row of a RecBole atomic file.
fn atomic_rows(
    raw: &Raw,
    name: &str,
    wanted: &[&str],
    mut each: impl FnMut(&Path, usize, &[&str]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let mut columns: Option<(Vec<usize>, usize)> = None;
    raw.for_each_line(name, |path, i, line| {
        let f: Vec<&str> = line.split('\t').collect();
        let Some((columns, width)) = &columns else {
            columns = Some((header_columns(line, wanted, path)?, f.len()));
            return Ok(());
        };
        if f.len() != *width {
            return Err(bad(
                path,
                i,
                format!("expected {width} tab-separated columns, found {}", f.len()),
            ));
        }
        let picked: Vec<&str> = columns.iter().map(|&c| f[c]).collect();
        each(path, i, &picked)
    })
}

fn parse_recbole(raw: &Raw) -> Result<Parsed, DataError> {
    let user_id = |text: &str, path: &Path, i: usize| -> Result<u32, DataError> {
        number(
            text.trim().strip_prefix("1m_").unwrap_or(text),
            "user id",
            path,
            i,
        )
    };
    let mut users = HashMap::new();
    let wanted = ["user_id", "age", "gender", "occupation", "zip_code"];
    atomic_rows(raw, "ml-1m.user", &wanted, |path, i, f| {
        users.insert(
            user_id(f[0], path, i)?,
            user(f[2], f[1], f[3], f[4], (path, i))?,
        );
        Ok(())
    })?;
    let mut movies = BTreeMap::new();
    atomic_rows(
        raw,
        "ml-1m.item",
        &["item_id", "release_year", "genre"],
        |path, i, f| {
            let names: Vec<&str> = f[2].split(' ').collect();
            let movie = Movie {
                year: number(f[1], "release year", path, i)?,
                genres: genres(&names, path, i)?,
            };
            movies.insert(f[0].trim().to_string(), movie);
            Ok(())
        },
    )?;
    let mut ratings = Vec::new();
    let wanted = ["user_id", "item_id", "rating", "timestamp"];
    atomic_rows(raw, "ml-1m.inter", &wanted, |path, i, f| {
        let title = f[1].trim();
        if !movies.contains_key(title) {
            return Err(bad(path, i, format!("item `{title}` is not in ml-1m.item")));
        }
        ratings.push(raw_rating(
            user_id(f[0], path, i)?,
            title,
            f[2],
            f[3],
            (path, i),
        )?);
        Ok(())
    })?;
    Ok(Parsed {
        users,
        movies,
        ratings,
    })
}

/// Prepares every domain of `grouping` from `raw` into `out/<domain>/{train,test}.csv`.
pub fn prepare(raw: &Path, out: &Path, grouping: Grouping) -> Result<Vec<Summary>, DataError> {
    let raw = Raw::detect(raw)?;
    let parsed = match raw {
        Raw::GroupLens { .. } => parse_grouplens(&raw)?,
        Raw::RecBole { .. } => parse_recbole(&raw)?,
    };
    // One id space for all domains: titles in sorted order from 1 (0 is never used).
    let index: HashMap<&str, u32> = parsed
        .movies
        .keys()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i as u32 + 1))
        .collect();
    let movies: Vec<&Movie> = parsed.movies.values().collect();
    let names = grouping.names();
    let mut by_domain: Vec<Vec<Rating>> = vec![Vec::new(); names.len()];
    for (position, (user_id, title, rating, time)) in parsed.ratings.iter().enumerate() {
        let user = parsed.users.get(user_id).ok_or_else(|| {
            DataError::Invalid(format!(
                "rating {} names user {user_id}, who is not in the users file",
                position + 1
            ))
        })?;
        let movie = index[title.as_str()];
        let domain = grouping.domain(AGES[user.age as usize], movies[movie as usize - 1].genres);
        by_domain[domain].push(Rating {
            user: *user_id,
            movie,
            rating: *rating,
            time: *time,
        });
    }
    let mut summaries = Vec::new();
    for (name, mut ratings) in names.into_iter().zip(by_domain) {
        ratings.sort_by_key(|r| (r.time, r.user, r.movie));
        let test_rows = ratings.len() / TEST_SHARE;
        let (train, test) = ratings.split_at(ratings.len() - test_rows);
        let dir = out.join(name);
        std::fs::create_dir_all(&dir).map_err(DataError::io(&dir))?;
        for (split, rows) in [("train", train), ("test", test)] {
            let path = dir.join(format!("{split}.csv"));
            crate::whole_file::write_with(&path, |file| -> Result<(), DataError> {
                let io = DataError::io(&path);
                let mut w = std::io::BufWriter::new(file);
                writeln!(w, "{}", processed_header()).map_err(DataError::io(&path))?;
                for r in rows {
                    let line = row(r, &parsed.users[&r.user], movies[r.movie as usize - 1]);
                    w.write_all(line.as_bytes()).map_err(DataError::io(&path))?;
                }
                w.flush().map_err(io)
            })?;
        }
        summaries.push(Summary {
            domain: name.to_string(),
            train_rows: train.len(),
            test_rows: test.len(),
            likes: ratings.iter().filter(|r| r.rating >= 4).count(),
            loves: ratings.iter().filter(|r| r.rating == 5).count(),
            users: ratings
                .iter()
                .map(|r| r.user)
                .collect::<BTreeSet<_>>()
                .len(),
            movies: ratings
                .iter()
                .map(|r| r.movie)
                .collect::<BTreeSet<_>>()
                .len(),
            dir,
        });
    }
    Ok(summaries)
}

/// One processed line: the id, the categorical fields, the genre flags and the movie's age
/// at the rating, the labels.
fn row(r: &Rating, user: &User, movie: &Movie) -> String {
    let days = r.time.div_euclid(86_400);
    let hour = r.time.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday: weekday 0 is Monday.
    let weekday = (days + 3).rem_euclid(7);
    let decade = ((i32::from(movie.year) - 1910) / 10).clamp(0, 9);
    let rated_in = 1970.0 + r.time as f64 / YEAR_SECONDS;
    let movie_age = ((rated_in - f64::from(movie.year)) / 10.0).max(0.0);
    let mut line = format!(
        "u{}m{},{},{},{},{},{},{},{},{},{}",
        r.user,
        r.movie,
        r.user,
        r.movie,
        user.gender,
        user.age,
        user.occupation,
        user.zip,
        decade,
        hour,
        weekday
    );
    for g in 0..GENRES.len() {
        line.push_str(if movie.genres & (1 << g) != 0 {
            ",1"
        } else {
            ",0"
        });
    }
    line.push_str(&format!(
        ",{movie_age:.3},{},{}\n",
        u8::from(r.rating >= 4),
        u8::from(r.rating == 5)
    ));
    line
}
