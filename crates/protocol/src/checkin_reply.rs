//! Plist bodies the server sends back to check-in requests that expect one.
//!
//! Only two check-in messages document response keys: GetBootstrapToken
//! (`BootstrapToken`) and GetToken (`TokenData`). Authenticate, TokenUpdate,
//! CheckOut and SetBootstrapToken expect an empty 200; DeclarativeManagement
//! answers with JSON from `declarative/protocol/`; UserAuthenticate lists no
//! response keys in the schema.

use super::dict::{parse_body, to_xml, DictWriter, Fields};
use super::error::ProtocolError;

/// Reply to GetBootstrapToken (`mdm/checkin/getbootstraptoken.yaml`, responsekeys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetBootstrapTokenResponse {
    /// `BootstrapToken` (`<data>`, optional): the escrowed token, if any.
    pub bootstrap_token: Option<Vec<u8>>,
}

impl GetBootstrapTokenResponse {
    /// The reply body; an empty dictionary when no token is escrowed.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(
            &DictWriter::new()
                .data("BootstrapToken", self.bootstrap_token.as_deref())
                .finish(),
        )
    }

    /// Parses a reply (the device simulator's side).
    pub fn parse(body: &[u8]) -> Result<GetBootstrapTokenResponse, ProtocolError> {
        let dict = parse_body(body)?;
        Ok(GetBootstrapTokenResponse {
            bootstrap_token: Fields::new(&dict).data("BootstrapToken")?,
        })
    }
}

/// Reply to GetToken (`mdm/checkin/gettoken.yaml`, responsekeys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetTokenResponse {
    /// `TokenData` (`<data>`, required); a string token is sent as its UTF-8 bytes.
    pub token_data: Vec<u8>,
}

impl GetTokenResponse {
    /// The reply body.
    pub fn to_xml(&self) -> Vec<u8> {
        to_xml(
            &DictWriter::new()
                .data("TokenData", Some(&self.token_data))
                .finish(),
        )
    }

    /// Parses a reply (the device simulator's side).
    pub fn parse(body: &[u8]) -> Result<GetTokenResponse, ProtocolError> {
        let dict = parse_body(body)?;
        Ok(GetTokenResponse {
            token_data: Fields::new(&dict)
                .data("TokenData")?
                .ok_or(ProtocolError::MissingKey("TokenData"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_token_reply_is_data_and_round_trips() {
        let reply = GetBootstrapTokenResponse {
            bootstrap_token: Some(b"escrowed-token".to_vec()),
        };
        let xml = String::from_utf8(reply.to_xml()).unwrap();
        assert!(xml.contains("<key>BootstrapToken</key>"));
        assert!(xml.contains("<data>"));
        assert_eq!(
            GetBootstrapTokenResponse::parse(xml.as_bytes()).unwrap(),
            reply
        );
    }

    #[test]
    fn missing_bootstrap_token_is_an_empty_dict() {
        let xml = String::from_utf8(GetBootstrapTokenResponse::default().to_xml()).unwrap();
        assert!(!xml.contains("BootstrapToken"));
        assert!(xml.contains("<dict/>"));
    }

    #[test]
    fn get_token_reply_round_trips() {
        let reply = GetTokenResponse {
            token_data: b"maid-token".to_vec(),
        };
        let xml = reply.to_xml();
        assert!(String::from_utf8_lossy(&xml).contains("<key>TokenData</key>"));
        assert_eq!(GetTokenResponse::parse(&xml).unwrap(), reply);
        assert_eq!(
            GetTokenResponse::parse(&GetBootstrapTokenResponse::default().to_xml()),
            Err(ProtocolError::MissingKey("TokenData"))
        );
    }
}
