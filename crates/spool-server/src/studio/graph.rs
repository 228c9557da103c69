//! A pipeline's graph laid out for drawing: each node in the column after the deepest node it
//! reads from, in the order recorded within a column, and each binding a curve from the node
//! it reads to the node reading. Pure, so the layout has data-driven tests.

use std::collections::BTreeMap;

/// A node as the graph needs it.
#[derive(Debug, Clone)]
pub struct GraphNode {
    pub node: String,
    pub job: String,
    pub status: String,
    pub class: &'static str,
    pub reused: bool,
    pub depends_on: Vec<String>,
}

/// A node's box.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBox {
    pub node: String,
    pub job: String,
    pub status: String,
    pub class: &'static str,
    pub reused: bool,
    pub x: i64,
    pub y: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub width: i64,
    pub height: i64,
    pub boxes: Vec<NodeBox>,
    /// SVG path data of each edge.
    pub edges: Vec<String>,
}

pub const BOX_W: i64 = 190;
pub const BOX_H: i64 = 52;
const GAP_X: i64 = 70;
const GAP_Y: i64 = 22;
const PAD: i64 = 12;

pub fn layout(nodes: &[GraphNode]) -> Graph {
    // Columns by longest path from a source; a dependency on an unknown node (never the
    // case for a stored pipeline) or a cycle leaves the node where it got to.
    let mut column: BTreeMap<&str, i64> = BTreeMap::new();
    for _ in 0..nodes.len() {
        let mut changed = false;
        for n in nodes {
            let want = n
                .depends_on
                .iter()
                .filter_map(|d| column.get(d.as_str()))
                .map(|c| c + 1)
                .max()
                .unwrap_or(0);
            if column.get(n.node.as_str()) != Some(&want) {
                column.insert(&n.node, want);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut rows: BTreeMap<i64, i64> = BTreeMap::new();
    let mut at: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let mut boxes = Vec::new();
    for n in nodes {
        let col = column.get(n.node.as_str()).copied().unwrap_or(0);
        let row = rows.entry(col).or_insert(0);
        let x = PAD + col * (BOX_W + GAP_X);
        let y = PAD + *row * (BOX_H + GAP_Y);
        *row += 1;
        at.insert(&n.node, (x, y));
        boxes.push(NodeBox {
            node: n.node.clone(),
            job: n.job.clone(),
            status: n.status.clone(),
            class: n.class,
            reused: n.reused,
            x,
            y,
        });
    }
    let mut edges = Vec::new();
    for n in nodes {
        let Some(&(x2, y2)) = at.get(n.node.as_str()) else {
            continue;
        };
        for dep in &n.depends_on {
            let Some(&(x1, y1)) = at.get(dep.as_str()) else {
                continue;
            };
            let (sx, sy) = (x1 + BOX_W, y1 + BOX_H / 2);
            let (ex, ey) = (x2, y2 + BOX_H / 2);
            let bend = (ex - sx) / 2;
            edges.push(format!(
                "M{sx},{sy} C{},{sy} {},{ey} {ex},{ey}",
                sx + bend,
                ex - bend
            ));
        }
    }
    let columns = column.values().max().map_or(0, |c| c + 1);
    let tallest = rows.values().max().copied().unwrap_or(0);
    Graph {
        width: 2 * PAD + columns * BOX_W + (columns - 1).max(0) * GAP_X,
        height: 2 * PAD + tallest * BOX_H + (tallest - 1).max(0) * GAP_Y,
        boxes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, deps: &[&str]) -> GraphNode {
        GraphNode {
            node: name.into(),
            job: format!("job_{name}"),
            status: "Completed".into(),
            class: "ok",
            reused: false,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn render(g: &Graph) -> String {
        let mut out = vec![format!("{}x{}", g.width, g.height)];
        out.extend(
            g.boxes
                .iter()
                .map(|b| format!("{} at {},{}", b.node, b.x, b.y)),
        );
        out.extend(g.edges.iter().cloned());
        out.join("\n")
    }

    #[test]
    fn two_branches_then_a_join() {
        let g = layout(&[node("a", &[]), node("b", &[]), node("join", &["a", "b"])]);
        expect_test::expect![[r#"
            474x150
            a at 12,12
            b at 12,86
            join at 272,12
            M202,38 C237,38 237,38 272,38
            M202,112 C237,112 237,38 272,38"#]]
        .assert_eq(&render(&g));
    }

    #[test]
    fn a_chain_listed_out_of_order_still_goes_left_to_right() {
        let g = layout(&[node("c", &["b"]), node("b", &["a"]), node("a", &[])]);
        expect_test::expect![[r#"
            734x76
            c at 532,12
            b at 272,12
            a at 12,12
            M462,38 C497,38 497,38 532,38
            M202,38 C237,38 237,38 272,38"#]]
        .assert_eq(&render(&g));
    }

    #[test]
    fn an_empty_pipeline_draws_nothing() {
        expect_test::expect!["24x24"].assert_eq(&render(&layout(&[])));
    }
}
