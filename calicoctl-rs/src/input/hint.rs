//! Turns serde's "unknown field `natOutGoing`, expected one of `cidr`, ..." into a
//! suggestion of the field the operator most likely meant.

/// The message with the expected-fields list replaced by the closest field, when one
/// is close; unchanged otherwise.
pub fn unknown_field(message: &str) -> String {
    let Some(start) = message.find("unknown field `") else {
        return message.to_owned();
    };
    let after = &message[start + "unknown field `".len()..];
    let Some(end) = after.find('`') else {
        return message.to_owned();
    };
    let field = &after[..end];
    let rest = &after[end + 1..];
    let Some(list) = rest.strip_prefix(", expected ") else {
        return message.to_owned();
    };
    // The list runs up to the location yaml_serde appends, if any.
    let (list, location) = match list.find(" at line ") {
        Some(at) => (&list[..at], &list[at..]),
        None => (list, ""),
    };
    let expected: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
    match closest(field, &expected) {
        Some(suggestion) => format!(
            "{}unknown field `{field}`{location}: did you mean `{suggestion}`?",
            &message[..start]
        ),
        None => message.to_owned(),
    }
}

fn closest<'a>(field: &str, expected: &[&'a str]) -> Option<&'a str> {
    let folded = field.to_lowercase();
    expected
        .iter()
        .map(|candidate| {
            let distance = strsim::levenshtein(&folded, &candidate.to_lowercase());
            (distance, *candidate)
        })
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(2))
        .min()
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_field_gets_the_closest_suggestion() {
        let message = "spec: unknown field `natOutGoing`, expected one of `cidr`, \
                       `blockSize`, `natOutgoing`, `disabled` at line 7 column 3";
        assert_eq!(
            unknown_field(message),
            "spec: unknown field `natOutGoing` at line 7 column 3: did you mean `natOutgoing`?"
        );
    }

    #[test]
    fn a_field_like_no_other_keeps_the_list() {
        let message = "spec: unknown field `colour`, expected `cidr` or `disabled`";
        assert_eq!(unknown_field(message), message);
    }
}
