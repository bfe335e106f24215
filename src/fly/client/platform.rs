//! `GET /v1/platform/regions?size=PRESET`: Fly's region list, each region with the
//! `capacity` for one Machine size (how many more Machines of that size fit). The plan's
//! pre-flight capacity check reads it; the shape is kept loose (`Regions` or `regions`,
//! capacity optional) because the endpoint is newer than the published spec.

use serde::Deserialize;

use super::{ApiError, Client, enc};
use crate::fly::ratelimit::Act;

/// One region's room for one Machine size.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegionCapacity {
    pub code: String,
    /// How many more Machines of the size fit; absent when Fly does not say.
    #[serde(default)]
    pub capacity: Option<u64>,
}

#[derive(Deserialize)]
struct RegionList {
    #[serde(alias = "regions", rename = "Regions", default)]
    regions: Vec<RegionCapacity>,
}

impl Client {
    /// The regions with their capacity for Machines of `size` (a preset name).
    pub async fn region_capacity(&self, size: &str) -> Result<Vec<RegionCapacity>, ApiError> {
        let path = format!("/platform/regions?size={}", enc(size));
        let list: RegionList = self.get(&path, Act::RegionsGet, size).await?;
        Ok(list.regions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_the_list_are_read() {
        let a: RegionList =
            serde_json::from_str(r#"{"Regions":[{"code":"iad","capacity":3,"name":"x"}]}"#)
                .unwrap();
        assert_eq!(a.regions[0].capacity, Some(3));
        let b: RegionList = serde_json::from_str(r#"{"regions":[{"code":"ord"}]}"#).unwrap();
        assert_eq!(b.regions[0].capacity, None);
    }
}
