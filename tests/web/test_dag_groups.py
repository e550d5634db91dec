"""Look-alike nodes folded into one box: which nodes make a group, and the graph drawn with it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from legato.web.dag_groups import collapse, count_states, find_groups
from legato.web.dag_layout import DagNode, render_svg

NS = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class GraphNode:
    id: str
    task: str
    upstream: tuple[str, ...]
    mapped: bool = False


def fan(n: int) -> list[GraphNode]:
    """A root, ``n`` leaves of one function, a join: the shape of a loop in a pipeline."""
    leaves = [GraphNode("leaf" if i == 0 else f"leaf_{i + 1}", "leaf", ("root",)) for i in range(n)]
    return [GraphNode("root", "noop", ()), *leaves,
            GraphNode("join", "noop", tuple(x.id for x in leaves))]


def test_a_fan_of_leaves_is_one_group_and_root_and_join_stay_apart() -> None:
    (group,) = find_groups(fan(1000))
    assert group.id == "leaf" and group.task == "leaf"
    assert len(group.members) == 1000 and "root" not in group.members


def test_the_steps_of_parallel_chains_are_one_group_each() -> None:
    nodes = [GraphNode("a" if i == 0 else f"a_{i + 1}", "a", ()) for i in range(20)]
    nodes += [GraphNode("b" if i == 0 else f"b_{i + 1}", "b", (nodes[i].id,)) for i in range(20)]
    groups = find_groups(nodes)
    assert [(g.id, len(g.members)) for g in groups] == [("a", 20), ("b", 20)]


def test_nodes_of_one_function_in_different_places_are_not_grouped() -> None:
    # 10 leaves under root, 10 under another root of the same function: two groups.
    nodes = [GraphNode("r1", "r", ()), GraphNode("r2", "q", ())]
    nodes += [GraphNode(f"x{i}", "x", ("r1" if i < 10 else "r2",)) for i in range(20)]
    groups = find_groups(nodes)
    assert sorted(len(g.members) for g in groups) == [10, 10]
    assert all({m[1:] for m in g.members} in ({str(i) for i in range(10)},
                                              {str(i) for i in range(10, 20)}) for g in groups)


def test_few_look_alikes_and_chains_of_one_function_are_drawn_one_by_one() -> None:
    assert find_groups(fan(4)) == ()
    chain = [GraphNode("s0", "step", ())]
    chain += [GraphNode(f"s{i}", "step", (f"s{i - 1}",)) for i in range(1, 300)]
    assert find_groups(chain) == ()


def test_a_folded_group_is_one_box_with_its_count_and_states() -> None:
    nodes = fan(50)
    groups = find_groups(nodes)
    states: dict[str, str | None] = {n.id: "succeeded" for n in nodes}
    states["leaf_7"] = "failed"
    dag = [DagNode(n.id, n.id, n.upstream, states[n.id]) for n in nodes]
    drawn = collapse(dag, groups, (), states)
    assert [d.id for d in drawn] == ["root", "leaf", "join"]
    box = drawn[1]
    assert box.kind == "group" and box.count == 50 and box.state == "failed"
    assert dict(box.counts) == {"failed": 1, "succeeded": 49}
    assert drawn[2].upstream == ("leaf",)  # 50 edges become one
    root = ET.fromstring(render_svg(drawn))
    (g,) = root.findall(f".//{NS}g[@data-group]")
    assert g.get("data-count") == "50"
    assert "1 failed · 49 succeeded" in (g.findtext(f"{NS}title") or "")
    segs = {r.get("class"): float(r.get("width", 0)) for r in g.findall(f"{NS}rect")
            if "seg" in (r.get("class") or "")}
    assert segs["seg state-failed"] >= 2.0 and segs["seg state-succeeded"] > 100
    assert len(root.findall(f".//{NS}path[@class='edge']")) == 2


def test_an_expanded_group_is_drawn_node_by_node() -> None:
    nodes = fan(50)
    dag = [DagNode(n.id, n.id, n.upstream) for n in nodes]
    drawn = collapse(dag, find_groups(nodes), expanded={"leaf"})
    assert len(drawn) == 52 and all(d.kind == "task" for d in drawn)


def test_checks_of_folded_tasks_fold_with_them() -> None:
    nodes = fan(10)
    dag = [DagNode(n.id, n.id, n.upstream) for n in nodes]
    dag += [DagNode("leaf_3:unique", "unique", ("leaf_3",), kind="check"),
            DagNode("join:rows", "rows", ("join",), kind="check")]
    drawn = collapse(dag, find_groups(nodes))
    assert [d.id for d in drawn if d.kind == "check"] == ["join:rows"]


def test_mapped_nodes_are_stacks_of_their_own_and_never_grouped() -> None:
    nodes = [GraphNode("root", "noop", ())]
    nodes += [GraphNode(f"m{i}", "m", ("root",), mapped=True) for i in range(10)]
    assert find_groups(nodes) == ()


def test_counts_put_what_wants_attention_first() -> None:
    counts = count_states(["succeeded"] * 5 + ["running", None, "failed"])
    assert list(counts) == ["failed", "running", "pending", "succeeded"]
