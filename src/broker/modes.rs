//! The modes of operation: what each needs of the caller's and the callee's network, in the
//! order the broker tries them. Choosing among modes reads only this table, so a new mode's
//! preconditions are added here (its wire code is [`Mode`], its mechanics the iP2P peer's).

use crate::ip2p::wire::{Mode, ModeSet};

use super::profile::Profile;

/// One mode and its preconditions.
#[derive(Clone, Copy, Debug)]
pub struct ModeSpec {
    /// The mode.
    pub mode: Mode,
    /// What it asks of the callee's network.
    pub needs: &'static str,
    /// Can a caller on this network take part?
    pub caller: fn(&Profile) -> bool,
    /// Can a callee on this network be reached this way (`relay`: it knows a relay)?
    pub callee: fn(&Profile, bool) -> bool,
}

/// Every mode, cheapest first: direct, UPnP IGD, STUNT #2, relay.
pub const MODES: [ModeSpec; 4] = [
    ModeSpec {
        mode: Mode::Direct,
        needs: "a public address (no NAT in front of the callee)",
        caller: |_| true,
        callee: |p, _| p.is_public(),
    },
    ModeSpec {
        mode: Mode::Upnp,
        needs: "an UPnP IGD that answers in front of the callee",
        caller: |_| true,
        callee: |p, _| p.igd.is_some(),
    },
    ModeSpec {
        mode: Mode::Stunt2,
        needs: "predictable NAT mappings on both sides",
        caller: |p| p.nat.predictable() || p.igd.is_some(),
        callee: |p, _| p.nat.predictable(),
    },
    ModeSpec {
        mode: Mode::Relay,
        needs: "a public relay the callee knows",
        caller: |_| true,
        callee: |_, relay| relay,
    },
];

/// The modes a caller on `profile` can take part in: what it offers.
///
/// ```
/// use ip2p::broker::{modes, NatBehaviour, Profile};
/// use ip2p::ip2p::wire::Mode;
/// let mut p = Profile::public("10.0.1.2".parse().unwrap());
/// p.nat = NatBehaviour::Random;
/// // behind a symmetric NAT a caller cannot punch, but can still reach a public or mapped callee
/// assert!(!modes::caller_offer(&p).contains(Mode::Stunt2));
/// assert!(modes::caller_offer(&p).contains(Mode::Direct));
/// ```
pub fn caller_offer(profile: &Profile) -> ModeSet {
    MODES
        .iter()
        .filter(|m| (m.caller)(profile))
        .map(|m| m.mode)
        .collect()
}

/// The modes a callee on `profile` can be reached by (`relay`: it knows a relay).
pub fn callee_modes(profile: &Profile, relay: bool) -> ModeSet {
    MODES
        .iter()
        .filter(|m| (m.callee)(profile, relay))
        .map(|m| m.mode)
        .collect()
}

/// What `mode` asks of the callee's network, for error messages.
pub fn needs(mode: Mode) -> &'static str {
    MODES
        .iter()
        .find(|m| m.mode == mode)
        .map_or("", |m| m.needs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::NatBehaviour;

    fn profile(nat: NatBehaviour, igd: bool) -> Profile {
        Profile {
            local: "10.0.1.2".parse().unwrap(),
            public: Some("80.100.1.1".parse().unwrap()),
            igd: igd.then(|| "80.100.1.1".parse().unwrap()),
            nat,
        }
    }

    #[test]
    fn the_table_is_in_cost_order_and_covers_every_mode() {
        let order: Vec<Mode> = MODES.iter().map(|m| m.mode).collect();
        assert_eq!(order, Mode::ALL);
    }

    #[test]
    fn callee_modes_follow_the_network() {
        let public = Profile::public("80.100.9.9".parse().unwrap());
        let preserving = profile(
            NatBehaviour::EndpointIndependent { preserving: true },
            false,
        );
        let igd = profile(NatBehaviour::EndpointIndependent { preserving: true }, true);
        let symmetric = profile(NatBehaviour::Random, false);
        let set = |p: &Profile, relay| callee_modes(p, relay).iter().collect::<Vec<_>>();
        assert_eq!(set(&public, false), [Mode::Direct, Mode::Stunt2]);
        assert_eq!(set(&preserving, true), [Mode::Stunt2, Mode::Relay]);
        assert_eq!(set(&igd, false), [Mode::Upnp, Mode::Stunt2]);
        assert_eq!(set(&symmetric, false), []);
        assert_eq!(set(&symmetric, true), [Mode::Relay]);
        let unknown = profile(NatBehaviour::Unknown, false);
        assert!(callee_modes(&unknown, false).is_empty());
    }

    #[test]
    fn a_caller_offers_stunt_only_when_its_port_can_be_known() {
        for (nat, igd, stunt) in [
            (NatBehaviour::NoNat, false, true),
            (NatBehaviour::Delta(2), false, true),
            (NatBehaviour::Random, true, true),
            (NatBehaviour::Random, false, false),
            (NatBehaviour::Unknown, false, false),
        ] {
            let o = caller_offer(&profile(nat, igd));
            assert_eq!(o.contains(Mode::Stunt2), stunt, "{nat:?} igd {igd}");
            assert!(o.contains(Mode::Direct) && o.contains(Mode::Upnp) && o.contains(Mode::Relay));
        }
    }
}
