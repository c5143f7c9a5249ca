//! Step 2 of the pipeline: the plan of one job. Which sizes this original
//! gets, the geometry of each, and what each is resized from: the decoded
//! original ("roots") or a larger result already in memory (the cascade of
//! [`thumbfarm_shared::sizes::cascade_source`]).

use super::error::RenderError;
use super::header::Header;
use super::orient;
use super::pixels::Need;
use thumbfarm_shared::sizes::{self, Geometry};
use thumbfarm_shared::Size;

/// One size to render.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The size.
    pub size: Size,
    /// Its geometry, in the oriented original's coordinates.
    pub geometry: Geometry,
    /// The size it is resized from; `None`: the decoded original.
    pub source: Option<Size>,
}

/// The steps of one job: roots first, then every other size after the size
/// it is resized from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Width after orientation.
    pub width: u32,
    /// Height after orientation.
    pub height: u32,
    /// Sizes resized from the decoded original.
    pub roots: Vec<Step>,
    /// Sizes resized from results in memory, sources first.
    pub derived: Vec<Step>,
}

impl Plan {
    /// The plan for `wanted` sizes of the original `header` describes.
    pub fn new(header: &Header, wanted: &[Size]) -> Result<Plan, RenderError> {
        let (w, h) = orient::oriented_dims(header.width, header.height, header.orientation);
        let set = sizes::render_set(wanted, w, h);
        let steps: Vec<Step> = set
            .iter()
            .filter_map(|&size| match sizes::plan(size, w, h) {
                sizes::Plan::Render(geometry) => Some(Step {
                    size,
                    geometry,
                    source: sizes::cascade_source(size, w, h, &set),
                }),
                _ => None,
            })
            .collect();
        let (roots, mut pending): (Vec<Step>, Vec<Step>) =
            steps.into_iter().partition(|s| s.source.is_none());
        // Order the cascade so that every source comes before its users.
        let mut derived = Vec::with_capacity(pending.len());
        let mut ready: Vec<Size> = roots.iter().map(|s| s.size).collect();
        while !pending.is_empty() {
            let before = pending.len();
            let (now, later): (Vec<Step>, Vec<Step>) = pending
                .into_iter()
                .partition(|s| s.source.is_some_and(|src| ready.contains(&src)));
            ready.extend(now.iter().map(|s| s.size));
            derived.extend(now);
            pending = later;
            if pending.len() == before {
                return Err(RenderError::Decode(
                    "cascade has a size whose source is not rendered".into(),
                ));
            }
        }
        Ok(Plan {
            width: w,
            height: h,
            roots,
            derived,
        })
    }

    /// What the roots need of the original, in stored coordinates: what a
    /// DCT-scaled decode must cover.
    pub fn needs(&self, header: &Header) -> Vec<Need> {
        self.roots
            .iter()
            .map(|step| {
                let (width, height) = stored_dims(&step.geometry, header.orientation);
                Need {
                    crop: orient::rect_to_stored(
                        step.geometry.crop,
                        header.orientation,
                        header.width,
                        header.height,
                    ),
                    width,
                    height,
                }
            })
            .collect()
    }
}

/// The output size of `g` in the stored (not yet oriented) original.
pub fn stored_dims(g: &Geometry, orientation: u8) -> (u32, u32) {
    if orient::transposes(orientation) {
        (g.height, g.width)
    } else {
        (g.width, g.height)
    }
}
