//! The coordinates table: agents' LAN network coordinates as the servers store them
//! (Consul's `coordinates` table), read by `/v1/coordinate/*`, `?near=` sorting and
//! `meridian rtt`. Updates for nodes the catalog does not know are skipped, and a node's
//! coordinates go with the node.

use super::rows::Table;
use super::{CoordinateUpdate, State};
use meridian_gossip::coordinate::{Coordinate, VivaldiConfig};

impl State {
    pub(crate) fn coordinate_update(&mut self, index: u64, updates: &[CoordinateUpdate]) {
        let cfg = VivaldiConfig::default();
        for u in updates {
            if !self.nodes.contains_key(&u.node) || !u.coord.is_valid(&cfg) {
                continue;
            }
            let key = (u.node.clone(), u.segment.clone());
            self.coordinates.insert(key, u.coord.clone());
            self.tables.coordinates = index;
            self.touch(Table::Coordinates, Self::service_key(&u.node, &u.segment));
        }
    }

    pub(crate) fn remove_coordinates(&mut self, index: u64, node: &str) {
        let segments: Vec<String> = self
            .coordinates
            .range((node.to_string(), String::new())..)
            .take_while(|((n, _), _)| n == node)
            .map(|((_, seg), _)| seg.clone())
            .collect();
        for seg in segments {
            self.coordinates.remove(&(node.to_string(), seg.clone()));
            self.tables.coordinates = index;
            self.touch(Table::Coordinates, Self::service_key(node, &seg));
        }
    }

    /// Every stored coordinate as (node, segment, coordinate), by node name.
    pub fn coordinates(&self) -> impl Iterator<Item = (&str, &str, &Coordinate)> {
        self.coordinates
            .iter()
            .map(|((n, s), c)| (n.as_str(), s.as_str(), c))
    }

    /// A node's coordinate in the default segment.
    pub fn coordinate(&self, node: &str) -> Option<&Coordinate> {
        self.coordinates.get(&(node.to_string(), String::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, DeregisterOp, Node, RegisterOp, Request};

    fn req(cmd: Command) -> Request {
        Request::new(1, cmd)
    }

    fn coord(x: f64) -> Coordinate {
        let mut c = Coordinate::new(&VivaldiConfig::default());
        c.vec[0] = x;
        c
    }

    fn update(node: &str, x: f64) -> Command {
        Command::CoordinateUpdate(vec![CoordinateUpdate {
            node: node.into(),
            segment: String::new(),
            coord: coord(x),
        }])
    }

    #[test]
    fn updates_need_a_known_node_and_leave_with_it() {
        let mut s = State::new();
        s.apply(1, &req(update("ghost", 0.1)));
        assert_eq!(s.coordinates().count(), 0);
        let reg = RegisterOp {
            node: Node {
                node: "n1".into(),
                address: "10.0.0.1".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        s.apply(2, &req(Command::Register(Box::new(reg))));
        s.apply(3, &req(update("n1", 0.1)));
        assert_eq!(s.coordinate("n1"), Some(&coord(0.1)));
        assert_eq!(s.table_indexes().coordinates, 3);
        // NaN is refused, the old value stays.
        s.apply(4, &req(update("n1", f64::NAN)));
        assert_eq!(s.coordinate("n1"), Some(&coord(0.1)));
        // Rows round-trip through restore.
        let restored = State::restore(s.rows()).expect("restore");
        assert_eq!(restored.coordinate("n1"), Some(&coord(0.1)));
        let dereg = DeregisterOp {
            node: "n1".into(),
            ..Default::default()
        };
        s.apply(5, &req(Command::Deregister(dereg)));
        assert_eq!(s.coordinate("n1"), None);
        assert_eq!(s.table_indexes().coordinates, 5);
    }
}
