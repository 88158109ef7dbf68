//! The JSON shapes of docs/protocol.md, parsed and produced.

use herald_hub_protocol::*;

#[test]
fn subscribe_with_recovery_parses() {
    let c = Command::parse(
        r#"{"id":1,"method":"subscribe","params":{"channel":"chat:1","recover":{"offset":5,"epoch":"ab"}}}"#,
    )
    .unwrap();
    let Call::Subscribe(p) = c.call else { panic!() };
    assert_eq!(p.channel, "chat:1");
    assert_eq!(
        p.recover,
        Some(StreamPosition {
            offset: 5,
            epoch: "ab".into()
        })
    );
}

#[test]
fn ping_needs_no_params() {
    let c = Command::parse(r#"{"id":9,"method":"ping"}"#).unwrap();
    assert!(matches!(c.call, Call::Ping));
}

#[test]
fn unknown_method_fails_with_its_id() {
    let text = r#"{"id":3,"method":"teleport","params":{}}"#;
    assert_eq!(
        Command::parse(text).unwrap_err(),
        CommandError::UnknownMethod { id: 3 }
    );
}

#[test]
fn missing_channel_is_bad_params() {
    let err = Command::parse(r#"{"id":4,"method":"publish","params":{"data":1}}"#).unwrap_err();
    assert!(
        matches!(err, CommandError::BadParams { id: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn no_id_is_malformed() {
    for text in ["", "[]", "{}", r#"{"id":"x","method":"ping"}"#, "\u{0}"] {
        assert_eq!(
            Command::parse(text).unwrap_err(),
            CommandError::Malformed,
            "{text}"
        );
    }
}

#[test]
fn command_round_trips_through_to_json() {
    let c = Command::parse(r#"{"id":2,"method":"history","params":{"channel":"a","limit":3}}"#)
        .unwrap();
    let again = Command::parse(&c.to_json()).unwrap();
    let Call::History(h) = again.call else {
        panic!()
    };
    assert_eq!((h.channel.as_str(), h.limit), ("a", Some(3)));
}

#[test]
fn error_reply_serialises_with_code_and_temporary_flag() {
    let reply: Reply<Empty> = Reply::error(4, ErrorBody::new(ErrorCode::RATE_LIMITED));
    assert_eq!(
        serde_json::to_string(&reply).unwrap(),
        r#"{"id":4,"error":{"code":108,"message":"rate limited","temporary":true}}"#
    );
}

#[test]
fn encoded_publication_is_the_serde_push() {
    let bytes = encode_publication("chat:\"1\"", 42, "e1", br#"{"t":"hi"}"#, None, Some("ann"));
    let push = Push::parse(std::str::from_utf8(&bytes).unwrap()).unwrap();
    let Push::Pub(p) = push else { panic!() };
    assert_eq!(p.channel, "chat:\"1\"");
    assert_eq!(p.offset, 42);
    assert_eq!(p.epoch, "e1");
    assert_eq!(p.data.get(), r#"{"t":"hi"}"#);
    assert_eq!(p.user.as_deref(), Some("ann"));
}

#[test]
fn subscribe_result_flattens_the_position() {
    let r = SubscribeResult {
        offset: 3,
        epoch: "x".into(),
        recovered: Some(false),
        publications: vec![],
        data: None,
    };
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"offset":3,"epoch":"x","recovered":false}"#
    );
}

#[test]
fn push_round_trips_through_to_json() {
    let push = Push::Join(Membership {
        channel: "c".into(),
        client: "k".into(),
        user: "u".into(),
    });
    let text = push.to_json();
    assert_eq!(
        text,
        r#"{"push":"join","channel":"c","client":"k","user":"u"}"#
    );
    assert!(matches!(Push::parse(&text).unwrap(), Push::Join(m) if m.user == "u"));
}

#[test]
fn reply_with_publications_parses_on_the_client_side() {
    let text = r#"{"id":1,"result":{"offset":2,"epoch":"e","recovered":true,"publications":[{"offset":2,"data":[1,2]}]}}"#;
    let reply: Reply<SubscribeResult> = serde_json::from_str(text).unwrap();
    let result = reply.result.unwrap();
    assert_eq!(result.publications[0].data.get(), "[1,2]");
}

#[test]
fn a_command_in_array_form_is_malformed() {
    // serde would read `[id, method, params]` as the envelope's fields in order.
    for text in [
        r#"[1,"ping"]"#,
        r#"[1,"subscribe",{"channel":"chat:1"}]"#,
        "[188888888]",
        " \n[1]",
    ] {
        assert_eq!(
            Command::parse(text).unwrap_err(),
            CommandError::Malformed,
            "{text}"
        );
    }
}

#[test]
fn params_in_array_form_are_bad_params() {
    let parsed = Command::parse(r#"{"id": 4, "method": "subscribe", "params": ["chat:1"]}"#);
    assert_eq!(
        parsed.unwrap_err(),
        CommandError::BadParams {
            id: 4,
            detail: "params must be an object".into()
        }
    );
}

#[test]
fn refresh_carries_a_token() {
    let c = Command::parse(r#"{"id":5,"method":"refresh","params":{"token":"a.b.c"}}"#).unwrap();
    let Call::Refresh(p) = c.call else { panic!() };
    assert_eq!(p.token, "a.b.c");
    assert!(Command::parse(r#"{"id":5,"method":"refresh","params":{}}"#).is_err());
}

#[test]
fn history_reads_newest_first_and_subscribe_asks_for_the_latest() {
    let c = Command::parse(
        r#"{"id":6,"method":"history","params":{"channel":"a","limit":1,"reverse":true}}"#,
    )
    .unwrap();
    let Call::History(p) = c.call else { panic!() };
    assert!(p.reverse);
    assert_eq!(p.limit, Some(1));
    let c = Command::parse(r#"{"id":7,"method":"subscribe","params":{"channel":"a","latest":3}}"#)
        .unwrap();
    let Call::Subscribe(p) = c.call else { panic!() };
    assert_eq!(p.latest, Some(3));
}

#[test]
fn server_side_subscription_pushes_round_trip() {
    let text = r##"{"push":"subscribed","channel":"#ann","offset":4,"epoch":"e1"}"##;
    let Push::Subscribed(s) = Push::parse(text).unwrap() else {
        panic!()
    };
    assert_eq!((s.channel.as_str(), s.offset), ("#ann", 4));
    assert_eq!(Push::Subscribed(s).to_json(), text);
    let text = r#"{"push":"unsubscribed","channel":"room:1","reason":"permission denied"}"#;
    let Push::Unsubscribed(u) = Push::parse(text).unwrap() else {
        panic!()
    };
    assert_eq!(Push::Unsubscribed(u).to_json(), text);
    let text = r#"{"push":"refresh","expires":1700000000}"#;
    let Push::Refresh(r) = Push::parse(text).unwrap() else {
        panic!()
    };
    assert_eq!(r.expires, 1_700_000_000);
    assert_eq!(Push::Refresh(r).to_json(), text);
}

#[test]
fn connected_names_the_expiry_only_when_there_is_one() {
    let connected = |expires| {
        Push::Connected(Connected {
            client: "n-1".into(),
            user: "ann".into(),
            ping_interval: 25,
            expires,
        })
        .to_json()
    };
    assert!(!connected(None).contains("expires"));
    assert!(connected(Some(10)).ends_with(r#""expires":10}"#));
}

#[test]
fn rpc_keeps_its_data_byte_for_byte_and_its_result_round_trips() {
    let c =
        Command::parse(r#"{"id":9,"method":"rpc","params":{"method":"upper","data":{"t": "hi"}}}"#)
            .unwrap();
    let Call::Rpc(p) = c.call else { panic!() };
    assert_eq!(p.method, "upper");
    assert_eq!(p.data.get(), r#"{"t": "hi"}"#);
    let missing = Command::parse(r#"{"id":9,"method":"rpc","params":{"method":"upper"}}"#);
    assert!(matches!(
        missing,
        Err(CommandError::BadParams { id: 9, .. })
    ));
    let text = r#"{"id":9,"result":{"data":{"t":"HI"}}}"#;
    let reply: Reply<RpcResult> = serde_json::from_str(text).unwrap();
    assert_eq!(reply.result.as_ref().unwrap().data.get(), r#"{"t":"HI"}"#);
    assert_eq!(serde_json::to_string(&reply).unwrap(), text);
}

#[test]
fn subscribe_result_carries_the_backend_data_only_when_there_is_some() {
    let r = SubscribeResult {
        offset: 0,
        epoch: "x".into(),
        recovered: None,
        publications: vec![],
        data: Some(serde_json::value::RawValue::from_string(r#"{"a":1}"#.into()).unwrap()),
    };
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"offset":0,"epoch":"x","data":{"a":1}}"#
    );
}
