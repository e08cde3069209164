"""SQL text helpers: `$n` placeholders for SQLite, and scripts split into statements."""

from __future__ import annotations

import pytest

from shoal.db._sql import split_script, to_sqlite


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT $1", "SELECT ?1"),
        ("SELECT $1, $2, $1", "SELECT ?1, ?2, ?1"),
        ("WHERE a = $10 AND b = $2", "WHERE a = ?10 AND b = ?2"),
        ("VALUES ($1,$2)", "VALUES (?1,?2)"),
        ("SELECT 'costs $1' || $1", "SELECT 'costs $1' || ?1"),
        ("SELECT 'it''s $1', $1", "SELECT 'it''s $1', ?1"),
        ('SELECT "col$1", $2', 'SELECT "col$1", ?2'),
        ("SELECT `a$1`, [b$2], $3", "SELECT `a$1`, [b$2], ?3"),
        ("SELECT $1 -- not $2\n, $3", "SELECT ?1 -- not $2\n, ?3"),
        ("SELECT /* $1 */ $2", "SELECT /* $1 */ ?2"),
        ("SELECT price$1 FROM t", "SELECT price$1 FROM t"),  # part of a name
        ("SELECT $a, $", "SELECT $a, $"),  # not numbered: left alone
        ("SELECT 'unterminated $1", "SELECT 'unterminated $1"),
        ("SELECT 1 /* unterminated $1", "SELECT 1 /* unterminated $1"),
        ("SELECT $1 -- trailing $2", "SELECT ?1 -- trailing $2"),
    ],
)
def test_placeholders_are_rewritten_outside_literals(sql: str, expected: str) -> None:
    assert to_sqlite(sql) == expected


@pytest.mark.parametrize(
    ("script", "statements"),
    [
        ("", []),
        ("  -- only a comment\n", []),
        ("SELECT 1", ["SELECT 1;"]),  # the last statement's ";" is optional
        ("SELECT 1;", ["SELECT 1;"]),
        ("SELECT 1; SELECT 2;", ["SELECT 1;", "SELECT 2;"]),
        ("SELECT 1;\n\n;;  ", ["SELECT 1;"]),
        ("INSERT INTO t VALUES ('a;b'); SELECT 2", ["INSERT INTO t VALUES ('a;b');", "SELECT 2;"]),
        ("SELECT 1; -- done; really\n", ["SELECT 1;"]),
        ("/* a; b */ SELECT 1;", ["/* a; b */ SELECT 1;"]),
        (
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END; SELECT 3;",
            [
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END;",
                "SELECT 3;",
            ],
        ),
        ("SELECT 1; SELECT 'unfinished", ["SELECT 1;", "SELECT 'unfinished"]),
    ],
)
def test_scripts_split_where_sqlite_says_a_statement_ends(
    script: str, statements: list[str]
) -> None:
    assert split_script(script) == statements
