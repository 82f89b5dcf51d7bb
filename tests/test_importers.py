"""Each importer on good and malformed files, through the real CLI and a real SQLite store."""

import json

from conftest import write_jsonl

from cope_local.home import ensure_home
from cope_local.store.database import Store


def stored(cope_home, **filters):
    with Store.open(ensure_home(cope_home)) as store:
        return store.writings(**filters)


def report(result):
    return json.loads(result.stdout)


# -- folder of .txt / .md -------------------------------------------------------------------

def test_folder_of_markdown_and_text(cope, cope_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("---\ndate: 2024-03-01\n---\n# Why I Walk\n\nEvery morning I walk.\n")
    (notes / "b.txt").write_text("On Tea\nGreen tea, always.\nNever milk.\n")
    (notes / "skip.png").write_bytes(b"\x89PNG")
    result = cope("import", notes, "--profile", "me", "--task", "post", "--json")
    assert result.exit_code == 0, result.output
    assert report(result) == {"imported": 2, "duplicates": 0, "rejected": []}
    items = {w.inputs["summary"]: w for w in stored(cope_home, profile="me")}
    assert items["Why I Walk"].output == "Every morning I walk."
    assert items["Why I Walk"].written_at == "2024-03-01"
    assert items["Why I Walk"].source_line == 4
    assert items["On Tea"].output == "Green tea, always.\nNever milk."
    assert items["On Tea"].source_path.endswith("b.txt")


def test_folder_rejects_empty_and_title_only_files(cope, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "empty.md").write_text("\n\n")
    (notes / "only.md").write_text("# Just a title\n")
    (notes / "bad.txt").write_bytes(b"caf\xe9 latin-1\nbody\n")
    (notes / "ok.md").write_text("# Fine\nbody\n")
    result = cope("import", notes, "--profile", "me", "--task", "post", "--json")
    assert result.exit_code == 1
    rejected = {r["path"].rsplit("/", 1)[-1]: r for r in report(result)["rejected"]}
    assert rejected["empty.md"]["reason"] == "empty file"
    assert rejected["only.md"] == {"path": str(notes / "only.md"), "line": 1, "reason": "no text after the title"}
    assert "not UTF-8" in rejected["bad.txt"]["reason"]
    assert report(result)["imported"] == 1


def test_folder_needs_a_single_input_task(cope, tmp_path):
    (tmp_path / "a.md").write_text("# T\nbody\n")
    result = cope("import", tmp_path / "a.md", "--profile", "me", "--task", "review", "--json")
    assert result.exit_code == 2
    assert "use CSV or JSONL" in report(result)["rejected"][0]["reason"]


# -- CSV / JSONL ----------------------------------------------------------------------------

def test_csv_with_default_columns_and_multiline_rows(cope, cope_home, tmp_path):
    path = tmp_path / "mail.csv"
    path.write_text('subject,body,date\nHello,"Hi all,\nsee you",2024-01-02\nAgain,Short one,\n')
    result = cope("import", path, "--profile", "me", "--json")  # task guessed from the columns
    assert report(result) == {"imported": 2, "duplicates": 0, "rejected": []}
    items = {w.inputs["subject"]: w for w in stored(cope_home, task="email")}
    assert items["Hello"].output == "Hi all,\nsee you"
    assert (items["Hello"].source_line, items["Again"].source_line) == (2, 4)
    assert items["Hello"].written_at == "2024-01-02"


def test_csv_column_mapping_and_bad_rows(cope, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("article,headline\nbody one,Title One\n,Title Two\nbody three,\nx,y,extra\n")
    result = cope("import", path, "-p", "me", "-t", "headline", "--map", "text=article", "--map", "title=headline", "--json")
    assert result.exit_code == 1
    assert report(result)["imported"] == 1
    assert [(r["line"], r["reason"]) for r in report(result)["rejected"]] == [
        (3, "empty 'article'"), (4, "empty 'headline'"), (5, "more values than header columns"),
    ]


def test_csv_missing_column_says_how_to_map(cope, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("article,headline\nbody,Title\n")
    result = cope("import", path, "-p", "me", "-t", "headline", "--json")
    assert result.exit_code == 2
    assert "--map FIELD=COLUMN" in report(result)["rejected"][0]["reason"]


def test_jsonl_good_and_malformed_lines(cope, cope_home, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps({"text": "An article", "title": "A Title"}) + "\n\n"
        + "{not json\n" + json.dumps(["a list"]) + "\n" + json.dumps({"text": "no title"}) + "\n"
    )
    result = cope("import", path, "-p", "me", "--json")
    assert result.exit_code == 1
    assert report(result)["imported"] == 1
    assert [(r["line"], r["reason"].split(":")[0]) for r in report(result)["rejected"]] == [
        (3, "not valid JSON"), (4, "not a JSON object"), (5, "missing column 'title' (task field 'title')"),
    ]
    assert stored(cope_home)[0].inputs == {"text": "An article"}


def test_ambiguous_columns_ask_for_the_task(cope, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"title": "T", "abstract": "A"}])
    result = cope("import", path, "-p", "me", "--json")
    assert result.exit_code == 2
    assert "pass --task" in report(result)["rejected"][0]["reason"]


def test_reimporting_the_same_file_adds_nothing(cope, cope_home, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [{"text": f"article {i}", "title": f"T{i}"} for i in range(5)])
    assert report(cope("import", path, "-p", "me", "--json"))["imported"] == 5
    assert report(cope("import", path, "-p", "me", "--json")) == {"imported": 0, "duplicates": 5, "rejected": []}
    assert len(stored(cope_home)) == 5


# -- LaMP / LongLaMP --------------------------------------------------------------------------

def lamp_questions(profile_fields):
    return [
        {"id": "q1", "input": "Generate a headline for the following article: x", "user": "Ann",
         "profile": [{"id": "p1", **profile_fields, "date": "2020-01-01"}, {"id": "p2", **profile_fields}]},
        {"id": "q2", "input": "...", "profile": [{"id": "p3", **profile_fields}, {"id": "p4", "text": "no title"}]},
    ]


def test_lamp_questions_one_profile_per_user(cope, cope_home, tmp_path):
    data = tmp_path / "lamp4"
    data.mkdir()
    questions = lamp_questions({"text": "An article", "title": "A Title"})
    questions[0]["profile"][1]["text"] = "Another article"
    (data / "questions.json").write_text(json.dumps(questions, indent=1))
    (data / "outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": []}))
    result = cope("import", data / "questions.json", "--json")
    assert result.exit_code == 1
    assert report(result)["imported"] == 3
    [rejection] = report(result)["rejected"]
    assert rejection["reason"] == "user profile item 1 (id p4): missing 'title'"
    assert rejection["line"] > 1
    assert {p.profile for p in stored(cope_home)} == {"lamp4:Ann", "lamp4:q2"}
    assert stored(cope_home, profile="lamp4:Ann")[0].task == "headline"


def test_longlamp_review_rows_are_detected(cope, cope_home, tmp_path):
    item = {"overall": "5.0", "description": "A kettle", "summary": "Great", "reviewText": "Boils fast."}
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps([{"name": "u7", "input": "...", "output": "...", "profile": [item]}]))
    assert report(cope("import", path, "--json"))["imported"] == 1
    [writing] = stored(cope_home)
    assert (writing.profile, writing.task, writing.output) == ("tmp:u7".replace("tmp", path.parent.name), "review", "Boils fast.")


def test_lamp_title_vs_abstract_from_the_question_text(cope, cope_home, tmp_path):
    item = {"title": "On Things", "abstract": "We study things."}
    path = tmp_path / "q.json"
    path.write_text(json.dumps([{"id": "1", "input": "Generate an abstract for the title On Things", "profile": [item]}]))
    cope("import", path, "--json")
    assert stored(cope_home)[0].task == "abstract"


def test_truncated_lamp_file_is_unreadable_and_stores_nothing(cope, cope_home, tmp_path):
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(lamp_questions({"text": "a", "title": "b"}))[:-40])
    result = cope("import", path, "--json")
    assert result.exit_code == 2
    assert "invalid JSON" in report(result)["rejected"][0]["reason"]
    assert stored(cope_home) == []


def test_lamp_outputs_file_points_to_the_questions(cope, tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"task": "LaMP_4", "golds": [{"id": "1", "output": "x"}]}))
    result = cope("import", path, "--format", "lamp", "--json")
    assert "import the questions file" in report(result)["rejected"][0]["reason"]


# -- mbox -------------------------------------------------------------------------------------

MBOX = """From me@example.org Mon Jan  1 10:00:00 2024
From: Me <me@example.org>
Subject: Lunch on Friday?
Date: Mon, 01 Jan 2024 10:00:00 +0000

Shall we try the new place?
>From what I hear it is good.

--
Me, sent from my desk

From me@example.org Tue Jan  2 10:00:00 2024
From: Me <me@example.org>
Subject: Re: Report

Looks good to me.

On Mon, Jan 1, 2024 at 9:00 AM Boss <boss@example.org> wrote:
> Please review the report.

From me@example.org Wed Jan  3 10:00:00 2024
From: Me <me@example.org>

No subject here.

From me@example.org Thu Jan  4 10:00:00 2024
Subject: Only quotes

> quoted
> text
"""


def test_mbox_sent_mail_strips_quotes_and_signatures(cope, cope_home, tmp_path):
    path = tmp_path / "Sent.mbox"
    path.write_text(MBOX)
    result = cope("import", path, "-p", "me", "--json")
    assert result.exit_code == 1
    bodies = {w.inputs["subject"]: w.output for w in stored(cope_home, task="email")}
    assert bodies == {
        "Lunch on Friday?": "Shall we try the new place?\nFrom what I hear it is good.",
        "Re: Report": "Looks good to me.",
    }
    assert [(r["line"], r["reason"]) for r in report(result)["rejected"]] == [
        (21, "message without a Subject"), (26, "empty body (only quoted text or a signature)"),
    ]


def test_not_an_mbox(cope, tmp_path):
    path = tmp_path / "x.mbox"
    path.write_text("hello\n")
    result = cope("import", path, "-p", "me", "--json")
    assert result.exit_code == 2
    assert "not an mbox" in report(result)["rejected"][0]["reason"]


# -- Reddit export ---------------------------------------------------------------------------

def test_reddit_posts_csv(cope, cope_home, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(
        "id,permalink,date,ip,subreddit,gildings,title,url,body\n"
        "a1,/r/x/1,2023-05-01 10:00:00 UTC,,x,0,My first bike,,\"I rode it\nall day.\"\n"
        "a2,/r/x/2,2023-05-02 10:00:00 UTC,,x,0,A link,https://e.org,\n"
        "a3,/r/x/3,2023-05-03 10:00:00 UTC,,x,0,Gone,,[deleted]\n"
    )
    result = cope("import", path, "-p", "me", "--json")
    assert result.exit_code == 1
    [post] = stored(cope_home, task="post")
    assert (post.inputs, post.output) == ({"summary": "My first bike"}, "I rode it\nall day.")
    assert [r["line"] for r in report(result)["rejected"]] == [4, 5]


def test_reddit_comments_csv_is_refused_with_advice(cope, tmp_path):
    path = tmp_path / "comments.csv"
    path.write_text("id,permalink,date,ip,subreddit,gildings,link,parent,body,media\n")
    result = cope("import", path, "-p", "me", "--format", "reddit", "--json")
    assert result.exit_code == 2
    assert "import posts.csv" in report(result)["rejected"][0]["reason"]


# -- CLI behaviour -----------------------------------------------------------------------------

def test_plain_output_lists_file_line_reason(cope, tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"text": "a", "title": "b"}\n{oops\n')
    result = cope("import", path, "-p", "me")
    assert result.exit_code == 1
    assert f"{path}:2: not valid JSON" in result.stderr
    assert "imported 1, already there 0, rejected 1" in result.stdout


def test_missing_file_and_missing_profile(cope, tmp_path):
    result = cope("import", tmp_path / "nope.csv", "-p", "me", "--json")
    assert result.exit_code == 2
    assert report(result)["rejected"][0]["reason"] == "no such file or folder"
    (tmp_path / "a.csv").write_text("text,title\na,b\n")
    result = cope("import", tmp_path / "a.csv")
    assert result.exit_code == 1
    assert "pass --profile NAME" in result.stderr


def test_history_profiles_and_search(cope, tmp_path):
    path = write_jsonl(tmp_path / "h.jsonl", [
        {"text": "The council voted on bicycles", "title": "Bike Lanes Win"},
        {"text": "Rain all week", "title": "Soggy Days Ahead"},
    ])
    cope("import", path, "-p", "ann")
    found = json.loads(cope("history", "--search", "bicycles", "--json").stdout)
    assert [item["output"] for item in found] == ["Bike Lanes Win"]
    assert json.loads(cope("history", "--search", "soggy", "--json").stdout)[0]["inputs"] == {"text": "Rain all week"}
    assert cope("history", "--search", "\"unbalanced", "--json").exit_code == 0
    assert "ann (person): headline 2" in cope("profiles").stdout
    result = cope("history", "--profile", "bob")
    assert result.exit_code == 1 and "cope import PATH --profile bob" in result.stderr


def test_a_task_corpus_is_imported_as_such(cope, cope_home, tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "a", "title": "b"}])
    cope("import", path, "-p", "newsroom", "--corpus")
    assert "newsroom (corpus): headline 1" in cope("profiles").stdout
