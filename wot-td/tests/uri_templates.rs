//! RFC 6570 expansion (examples from the RFC, section 3.2) and template errors.

use serde_json::{Map, Value, json};
use wot_td::{UriTemplateError, expand_uri_template, uri_template_variables};

fn vars() -> Map<String, Value> {
    json!({
        "var": "value", "hello": "Hello World!", "path": "/foo/bar", "empty": "",
        "x": "1024", "y": "768", "list": ["red", "green", "blue"],
        "keys": {"semi": ";", "dot": ".", "comma": ","}, "id": 42, "on": true, "nothing": null
    })
    .as_object()
    .unwrap()
    .clone()
}

#[track_caller]
fn x(template: &str, expected: &str) {
    assert_eq!(
        expand_uri_template(template, &vars()).unwrap(),
        expected,
        "{template}"
    );
}

#[test]
fn simple_and_reserved() {
    x("{var}", "value");
    x("{hello}", "Hello%20World%21");
    x("{+hello}", "Hello%20World!");
    x("{+path}/here", "/foo/bar/here");
    x("{x,y}", "1024,768");
    x("{var:3}", "val");
    x("{list}", "red,green,blue");
    x("{keys}", "semi,%3B,dot,.,comma,%2C");
    x("{#hello}", "#Hello%20World!");
    x("/things/{id}/on/{on}", "/things/42/on/true");
}

#[test]
fn labels_paths_and_parameters() {
    x("X{.var}", "X.value");
    x("{/var,x}/here", "/value/1024/here");
    x("{/list*}", "/red/green/blue");
    x("{;x,y,empty}", ";x=1024;y=768;empty");
    x("{?x,y,empty}", "?x=1024&y=768&empty=");
    x("{?list}", "?list=red,green,blue");
    x("{?list*}", "?list=red&list=green&list=blue");
    x("{?keys*}", "?semi=%3B&dot=.&comma=%2C");
    x("?fixed=yes{&x}", "?fixed=yes&x=1024");
}

#[test]
fn undefined_variables_are_left_out() {
    x("/temp{?missing,nothing}", "/temp");
    x("/temp{?missing,x}", "/temp?x=1024");
    x("{missing}", "");
}

#[test]
fn malformed_templates_are_errors() {
    for bad in ["/a{b", "/a}b", "{}", "{a b}", "{=x}", "{a:0}", "{{a}}"] {
        let err = expand_uri_template(bad, &vars()).unwrap_err();
        assert!(
            matches!(err, UriTemplateError::Syntax { .. }),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        uri_template_variables("/t/{id}{?unit,lat}").unwrap(),
        ["id", "unit", "lat"]
    );
}
