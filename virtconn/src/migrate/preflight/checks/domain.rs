//! `domain-state`: the domain is in a state the chosen kind of move can take, and the
//! destination has no other domain in the way.

use super::DOMAIN_STATE;
use crate::migrate::preflight::facts::{DestFacts, DomainFacts, Fact};
use crate::migrate::preflight::Check;
use crate::migrate::request::{MigrateRequest, MoveKind};
use crate::model::DomainState;

pub(crate) fn domain_state(
    req: &MigrateRequest,
    dom: &Fact<DomainFacts>,
    dest: &DestFacts,
) -> Vec<Check> {
    let name = &req.domain;
    let dom = match dom {
        Ok(d) => d,
        Err(e) => {
            return vec![Check::fail(
                DOMAIN_STATE,
                format!("cannot read domain '{name}' at {}: {e}", req.source_uri),
                "check the domain name with virsh list --all on the source",
            )]
        }
    };
    let mut out = Vec::new();
    let state = match &dom.state {
        DomainState::Running => "running",
        DomainState::Paused => "paused",
        DomainState::ShutOff => "shut off",
        DomainState::Other(s) => s.as_str(),
    };
    match req.kind {
        MoveKind::Live => match dom.state {
            DomainState::Running | DomainState::Paused => {}
            DomainState::ShutOff => out.push(Check::fail(
                DOMAIN_STATE,
                format!("domain '{name}' is shut off; a live move needs it running"),
                "start it first, or move it offline",
            )),
            DomainState::Other(_) => out.push(Check::fail(
                DOMAIN_STATE,
                format!("domain '{name}' is {state}; a live move needs it running or paused"),
                "bring it to running (virsh resume / start) first",
            )),
        },
        MoveKind::Offline => {
            if !dom.persistent {
                out.push(Check::fail(
                    DOMAIN_STATE,
                    format!(
                        "domain '{name}' is transient: an offline move has no definition to move"
                    ),
                    "move it live, or define it persistently first (virsh dumpxml | virsh define)",
                ));
            }
            if matches!(dom.state, DomainState::Running | DomainState::Paused) {
                out.push(Check::warn(
                    DOMAIN_STATE,
                    format!("domain '{name}' is {state}: an offline move copies only its definition and leaves it running here"),
                    "shut it down first, or move it live",
                ));
            }
        }
    }
    match &dest.same_name {
        Ok(None) => {}
        Ok(Some(other)) if dom.def.uuid.as_deref() != Some(other.uuid.as_str()) => {
            out.push(Check::fail(
                DOMAIN_STATE,
                format!(
                    "the destination already has a domain named '{name}' with another UUID ({})",
                    other.uuid
                ),
                "rename or remove the destination's domain first",
            ));
        }
        Ok(Some(other)) if other.active => out.push(Check::fail(
            DOMAIN_STATE,
            format!("domain '{name}' is already running at the destination"),
            "stop the destination's copy first, or check that you are not moving it twice",
        )),
        Ok(Some(_)) => {
            if req.kind == MoveKind::Offline || req.persistent {
                out.push(Check::warn(
                    DOMAIN_STATE,
                    format!("the destination already defines '{name}' (same UUID, shut off); its definition will be replaced"),
                    "undefine it at the destination first if it differs on purpose",
                ));
            }
        }
        Err(e) => out.push(Check::warn(
            DOMAIN_STATE,
            format!("could not look for '{name}' at the destination: {e}"),
            "check with virsh list --all on the destination",
        )),
    }
    if out.is_empty() {
        let kind = match req.kind {
            MoveKind::Live => "live",
            MoveKind::Offline => "offline",
        };
        out.push(Check::pass(
            DOMAIN_STATE,
            format!(
                "domain '{name}' is {state}{}, ready for a {kind} move",
                if dom.persistent {
                    " and persistent"
                } else {
                    ""
                }
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::preflight::checks::tests_support::*;
    use crate::migrate::preflight::facts::DestDomain;
    use crate::migrate::preflight::CheckStatus;

    #[test]
    fn running_domain_passes_live() {
        let c = domain_state(&live(), &Ok(domain()), &dest_facts());
        let c = single(&c);
        assert_eq!(c.status, CheckStatus::Pass);
        assert_eq!(
            c.message,
            "domain 'web' is running and persistent, ready for a live move"
        );
    }

    #[test]
    fn shut_off_domain_fails_live() {
        let mut dom = domain();
        dom.state = DomainState::ShutOff;
        let found = domain_state(&live(), &Ok(dom), &dest_facts());
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "is shut off; a live move needs it running",
            "move it offline",
        );
    }

    #[test]
    fn crashed_domain_fails_live() {
        let mut dom = domain();
        dom.state = DomainState::Other("crashed".into());
        let found = domain_state(&live(), &Ok(dom), &dest_facts());
        assert_status(single(&found), CheckStatus::Fail, "is crashed", "resume");
    }

    #[test]
    fn transient_domain_fails_offline() {
        let mut dom = domain();
        dom.persistent = false;
        dom.state = DomainState::ShutOff;
        let found = domain_state(&offline(), &Ok(dom), &dest_facts());
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "is transient",
            "define it persistently",
        );
    }

    #[test]
    fn running_domain_warns_offline() {
        let found = domain_state(&offline(), &Ok(domain()), &dest_facts());
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "copies only its definition",
            "shut it down",
        );
    }

    #[test]
    fn missing_domain_fails() {
        let found = domain_state(&live(), &Err("no domain named 'web'".into()), &dest_facts());
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "cannot read domain 'web' at qemu:///system",
            "virsh list --all",
        );
    }

    #[test]
    fn destination_name_clash() {
        let mut d = dest_facts();
        d.same_name = Ok(Some(DestDomain {
            uuid: "00000000-0000-0000-0000-000000000001".into(),
            active: false,
        }));
        let found = domain_state(&live(), &Ok(domain()), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "with another UUID",
            "rename or remove",
        );
        d.same_name = Ok(Some(DestDomain {
            uuid: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
            active: true,
        }));
        let found = domain_state(&live(), &Ok(domain()), &d);
        assert_status(
            single(&found),
            CheckStatus::Fail,
            "already running at the destination",
            "moving it twice",
        );
        d.same_name = Ok(Some(DestDomain {
            uuid: "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
            active: false,
        }));
        let mut r = live();
        r.persistent = true;
        let found = domain_state(&r, &Ok(domain()), &d);
        assert_status(
            single(&found),
            CheckStatus::Warn,
            "will be replaced",
            "undefine it",
        );
    }
}
