//! Which group a GROUP argument means, and how each group is shown.
//!
//! Group names are free text chosen by whoever created or renamed the
//! group, and nothing stops two groups from sharing one (anyone who knows
//! you can create a second "family" with you in it). So a name that fits
//! several groups is refused with the candidates listed, never guessed,
//! and wherever a name is not unique it is shown as `name#xxxxxxxx` (the
//! first 8 hex digits of the group id), as contacts are.
//!
//! Must never: pick one of several groups that fit, or show two groups
//! under the same label.

use std::collections::HashMap;

use super::view::GroupSummary;
use crate::exit_status::Failure;

/// Hex digits of the id in a `name#xxxxxxxx` label.
pub const LABEL_HEX_DIGITS: usize = 8;

/// Hex digits of a full group id.
const ID_HEX_DIGITS: usize = 64;

/// The label each group is shown under, by id: its name, or
/// `name#xxxxxxxx` when another group has the same name.
pub fn display_names(groups: &[GroupSummary]) -> HashMap<String, String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for group in groups {
        *count.entry(group.name.as_str()).or_default() += 1;
    }
    groups
        .iter()
        .map(|group| {
            let label = if count[group.name.as_str()] > 1 {
                format!("{}#{}", group.name, short_id(&group.id))
            } else {
                group.name.clone()
            };
            (group.id.clone(), label)
        })
        .collect()
}

fn short_id(id: &str) -> &str {
    id.get(..LABEL_HEX_DIGITS).unwrap_or(id)
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The one group `text` names: a full id (64 hex digits), `name#xxxxxxxx`
/// (a name and a prefix of the id, as [`display_names`] shows it), or a
/// name that exactly one group has. Anything else fails with exit 1 and
/// says what would work.
pub fn resolve<'a>(groups: &'a [GroupSummary], text: &str) -> Result<&'a GroupSummary, Failure> {
    if text.len() == ID_HEX_DIGITS && is_hex(text) {
        let id = text.to_ascii_lowercase();
        return groups.iter().find(|g| g.id == id).ok_or_else(|| {
            Failure::user(format!(
                "no group has the id {id} (umbra group list shows yours)"
            ))
        });
    }
    let by_name: Vec<&GroupSummary> = groups.iter().filter(|g| g.name == text).collect();
    let candidates = match (by_name.as_slice(), text.rsplit_once('#')) {
        // A name that itself contains '#' still matches as a name first.
        ([], Some((name, prefix))) if is_hex(prefix) => {
            let prefix = prefix.to_ascii_lowercase();
            groups
                .iter()
                .filter(|g| g.name == name && g.id.starts_with(&prefix))
                .collect()
        }
        _ => by_name,
    };
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::user(format!(
            "you are in no group called {text:?} (umbra group list shows yours)"
        ))),
        several => {
            let labels = display_names(groups);
            let listed: Vec<String> = several
                .iter()
                .map(|g| {
                    let label = labels.get(&g.id).map_or(g.name.as_str(), String::as_str);
                    format!("{label} (id {})", g.id)
                })
                .collect();
            Err(Failure::user(format!(
                "{} groups are called {text:?}: {}; name one as NAME#xxxxxxxx or by its id",
                several.len(),
                listed.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id_byte: &str, name: &str) -> GroupSummary {
        GroupSummary {
            id: id_byte.repeat(32),
            name: name.into(),
            version: 0,
            admin: false,
            active: true,
            members_may_rename: false,
            members: Vec::new(),
        }
    }

    #[test]
    fn a_unique_name_or_an_id_names_its_group() {
        let groups = [group("1a", "family"), group("2b", "work")];
        assert_eq!(resolve(&groups, "work").unwrap().id, "2b".repeat(32));
        assert_eq!(
            resolve(&groups, &"1A".repeat(32)).unwrap().name,
            "family",
            "ids are hex in either case"
        );
        assert_eq!(
            display_names(&groups)[&"1a".repeat(32)],
            "family",
            "a unique name is shown bare"
        );
    }

    #[test]
    fn a_shared_name_is_refused_with_the_ids_and_shown_apart() {
        let groups = [
            group("1a", "family"),
            group("2b", "family"),
            group("3c", "work"),
        ];
        let error = resolve(&groups, "family").unwrap_err().to_string();
        assert!(error.contains("2 groups are called \"family\""), "{error}");
        assert!(error.contains(&"1a".repeat(32)), "{error}");
        assert!(error.contains(&"2b".repeat(32)), "{error}");
        assert!(error.contains("family#1a1a1a1a"), "{error}");
        let labels = display_names(&groups);
        assert_eq!(labels[&"2b".repeat(32)], "family#2b2b2b2b");
        assert_eq!(labels[&"3c".repeat(32)], "work");
        // The label it is shown under names it.
        assert_eq!(
            resolve(&groups, "family#2b2b2b2b").unwrap().id,
            "2b".repeat(32)
        );
        assert_eq!(resolve(&groups, "family#1A").unwrap().id, "1a".repeat(32));
    }

    #[test]
    fn a_record_names_the_group_by_the_name_it_carries() {
        let groups = [
            group("1a", "family"),
            group("2b", "family"),
            group("3c", "work"),
        ];
        // The label of a record agrees with `display_names` for current names…
        for g in &groups {
            let reference = super::super::reference_in(&groups, &g.id, &g.name);
            assert_eq!(reference.display_name, display_names(&groups)[&g.id]);
        }
        // …and follows the name the record carries, not a later rename.
        let old = super::super::reference_in(&groups, &"3c".repeat(32), "family");
        assert_eq!(old.name, "family");
        assert_eq!(old.display_name, "family#3c3c3c3c");
        let unique = super::super::reference_in(&groups, &"3c".repeat(32), "hiking");
        assert_eq!(unique.display_name, "hiking");
    }

    #[test]
    fn nothing_that_fits_is_a_clear_user_error() {
        let groups = [group("1a", "family"), group("2b", "a#1a")];
        for text in ["nope", "family#2b", &"ff".repeat(32), "work#zz", ""] {
            let error = resolve(&groups, text).unwrap_err();
            assert_eq!(error.status, crate::exit_status::ExitStatus::UserError);
        }
        // A name containing '#' matches as a name before as a label.
        assert_eq!(resolve(&groups, "a#1a").unwrap().id, "2b".repeat(32));
    }
}
