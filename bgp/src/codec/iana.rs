//! IANA numbers the codec reads and writes, in one place.

/// Message types (RFC 4271 4.1, RFC 2918).
pub mod message {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Path attribute type codes.
pub mod attribute {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// Attribute flag bits (RFC 4271 4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
    /// The bits that say what kind of attribute this is.
    pub const KIND: u8 = OPTIONAL | TRANSITIVE;
}

/// Capability codes (RFC 5492 registry).
pub mod capability {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const HOSTNAME: u8 = 73;
}

/// OPEN optional parameter types (RFC 5492, RFC 9072).
pub mod parameter {
    pub const CAPABILITIES: u8 = 2;
    /// Marks the RFC 9072 extended form when it is also the length octet.
    pub const EXTENDED_LENGTH: u8 = 255;
}

/// Address family identifiers and subsequent ones.
pub mod afi {
    pub const IPV4: u16 = 1;
    pub const IPV6: u16 = 2;
    pub const SAFI_UNICAST: u8 = 1;
}

/// NOTIFICATION error codes and subcodes (RFC 4271 4.5, RFC 4486, RFC 6608, RFC
/// 7313): every code and subcode tabby sends or reads lives here.
pub mod error {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;

    pub const OPEN_MESSAGE: u8 = 2;
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;

    pub const UPDATE_MESSAGE: u8 = 3;
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;

    pub const HOLD_TIMER_EXPIRED: u8 = 4;

    /// Finite State Machine Error; its subcodes (RFC 6608) say in which state the
    /// unexpected message arrived.
    pub const FSM_ERROR: u8 = 5;

    pub const CEASE: u8 = 6;

    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;

    /// Finite State Machine Error subcodes (RFC 6608 3).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(u8)]
    pub enum FsmSubcode {
        UnexpectedInOpenSent = 1,
        UnexpectedInOpenConfirm = 2,
        UnexpectedInEstablished = 3,
    }

    /// Cease subcodes (RFC 4486 4, RFC 8538 5).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[repr(u8)]
    pub enum CeaseSubcode {
        MaximumPrefixesReached = 1,
        AdministrativeShutdown = 2,
        PeerDeconfigured = 3,
        AdministrativeReset = 4,
        ConnectionRejected = 5,
        OtherConfigurationChange = 6,
        ConnectionCollisionResolution = 7,
        OutOfResources = 8,
        HardReset = 9,
        /// RFC 9384: BFD saw the forwarding path fail.
        BfdDown = 10,
    }
}

/// AS_TRANS (RFC 6793): stands in for a 4-octet AS in 2-octet fields.
pub const AS_TRANS: u16 = 23456;
