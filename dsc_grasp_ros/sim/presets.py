"""The synthetic-data presets: one :class:`SceneConfig` per data-set generation, in :data:`PRESETS`.

Every preset runs through the same code: :func:`.scene.build_scene` builds the scene,
:func:`.camera.sample_camera` and :func:`.scene.sample_lighting` draw camera and light,
:func:`.trials.label_view` labels the view, :func:`.camera.sensor_rgb` and the depth model add the
sensor, :mod:`.dataset` writes the files. A preset is only the table of settings below.

* ``v1`` -- the first data set: pybullet_data's procedural objects (1-4), a ground plane or
  pybullet_data's table, no clutter, camera 0.35-0.7 m above the support tilted up to 20 degrees,
  mild colour-sensor effects, the D435 stereo-noise model, one view per scene, 80 free-angle
  candidates per object.
* ``v2`` -- the real household meshes of ``../shared/objects/pile_train`` (never the benchmark
  set; the ``train`` selection by default), 1-6 objects in a pile whose radius grows with their
  number, a floor or a finite table top with walls, boxes, a board and a mat around, camera
  0.35-1.5 m away along its axis (log-uniform) tilted up to 35 degrees, wider lighting and
  stronger colour-sensor effects, some dark and some shiny objects driving the RealSense-like depth
  holes, two views per scene, cheaper labelling (:class:`.trials.LabelParams`).
* ``cornell`` -- Cornell-like views: one of ``v2``'s training meshes alone on a plain board or floor
  (mostly one solid colour, no clutter), camera 0.5-0.8 m away tilted up to 30 degrees with a
  Kinect-v1-like field of view (f about 525 px at 640x480) and colour sensor, the Kinect-v1
  structured-light depth model (:func:`.camera.kinect_depth`: axial noise, 1/8-pixel disparity steps,
  ragged edges, the projector shadow, dark and shiny dropouts), two views per scene, ``v2``'s labelling
  with up to 48 candidates on the object.
* ``wrist`` -- close-range views for a camera on the hand: ``v2``'s meshes (1-4), support and looks
  without the clutter (a camera 15 cm from the objects would sit inside the walls and boxes placed
  18-60 cm around them), camera 0.15-0.5 m away (log-uniform) tilted up to 30 degrees with a D405's
  wide field of view (f about 337 px at 640x480), the RealSense model with the D405's parameters
  (:data:`.camera.D405`: depth and colour from one imager, 18 mm baseline, 0.1 mm unit, nothing nearer
  than 7 cm), two views per scene, ``v2``'s labelling.

The random draws of each preset happen in the order they always did, so a preset reproduces its
data set bit for bit; a change that alters the files generated for a seed bumps the preset's
``generator_version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .camera import D405, D4XX, CameraConfig, ColourSensor, RealSenseSensor
from .scene import LightingConfig, SurfaceLook
from .trials import LabelParams


@dataclass(frozen=True)
class SceneConfig:
    name: str
    generator_version: int = 1
    # ---- objects
    objects: str = "catalogue"  # object source: "catalogue" (pybullet_data) or "meshes" (the shared folder)
    object_range: str = "all"  # default selection (see the source's ``select``)
    objects_per_scene: tuple[int, int] = (1, 4)
    pile_area: tuple[float, float] = (0.08, 0.0)  # objects dropped within +- (a + b * n) m of the centre
    keep_radius: float = 0.3  # objects that roll farther from the centre are removed (m)
    scale_range: tuple[float, float] = (0.8, 1.05)  # meshes: scale of the real size
    density_range: tuple[float, float] = (150.0, 600.0)  # meshes: kg/m^3
    # ---- support and background
    supports: tuple[str, float, str] = ("table", 0.4, "plane")  # the first kind with this probability, else the second
    floor_size: float = 4.0  # side of the textured ground (m)
    floor_cell: float = 0.1
    look: SurfaceLook = SurfaceLook()
    clutter: bool = False  # walls, boxes, a board and a mat around the objects
    # ---- camera, light, sensor
    views: int = 1
    camera: CameraConfig = CameraConfig()
    lighting: LightingConfig = LightingConfig()
    colour: ColourSensor = ColourSensor()
    #: "stereo" (:func:`.camera.stereo_depth`), "realsense" (:func:`.camera.realsense_depth`) or "kinect"
    #: (:func:`.camera.kinect_depth`)
    depth_model: str = "stereo"
    depth_sensor: RealSenseSensor = D4XX  # the realsense model's parameter ranges
    depth_first: bool = False  # the depth model draws its noise before the colour sensor
    # ---- labels and files
    label: LabelParams = LabelParams()
    #: the view and scene manifests also hold the preset name, camera distance and tilt, floor, background,
    #: depth model and the objects' looks (the first data set's manifests do not)
    detailed_manifest: bool = False


PRESETS: dict[str, SceneConfig] = {
    "v1": SceneConfig(name="v1"),
    "v2": SceneConfig(
        name="v2",
        objects="meshes",
        object_range="train",
        objects_per_scene=(1, 6),
        pile_area=(0.03, 0.02),
        keep_radius=0.35,
        supports=("floor", 0.3, "board_table"),
        floor_size=8.0,
        floor_cell=0.2,
        look=SurfaceLook(textured=0.6, tint=(0.55, 1.0), tile_m=(0.1, 0.6)),
        clutter=True,
        views=2,
        camera=CameraConfig(distance=(0.35, 1.5), vertical=False, max_tilt_deg=35.0, focal_jitter=(0.88, 1.12),
                            aspect_jitter=(0.997, 1.003), principal="centre", principal_jitter_px=10.0, target_jitter=0.03),
        lighting=LightingConfig(elevation_deg=(25, 90), tint=(0.8, 1.0), ambient=(0.2, 0.75), diffuse=(0.25, 0.85),
                                specular=(0.0, 0.6), shadow_probability=0.7),
        colour=ColourSensor(exposure=(0.7, 1.3), white_balance=(0.9, 1.1), gamma=(0.8, 1.25), vignetting=0.5,
                            blur=0.6, blur_sigma=(0.3, 1.0), noise_sigma=(0.5, 4.0)),
        depth_model="realsense",
        depth_first=True,
        label=LabelParams(candidates=24, max_candidates_per_view=72, min_pixels=60, min_edge_px=2.0, spread=True,
                          angles=12, prefilter_outside=True, local_collisions=True, lift=0.08, timing=(48, 36, 12),
                          close_speed=0.24),
        detailed_manifest=True,
    ),
}

_V2 = PRESETS["v2"]
PRESETS["cornell"] = SceneConfig(
    name="cornell",
    objects="meshes",
    object_range="train",
    objects_per_scene=(1, 1),
    pile_area=(0.04, 0.0),
    supports=("board_table", 0.7, "floor"),
    look=SurfaceLook(textured=0.25, tint=(0.6, 1.0), tile_m=(0.1, 0.6)),
    clutter=False,
    views=2,
    camera=CameraConfig(distance=(0.5, 0.8), vertical=False, max_tilt_deg=30.0, focal_jitter=(0.82, 0.89),
                        aspect_jitter=(0.997, 1.003), principal="centre", principal_jitter_px=8.0, target_jitter=0.03),
    lighting=LightingConfig(elevation_deg=(35, 90), tint=(0.85, 1.0), ambient=(0.3, 0.75), diffuse=(0.3, 0.8),
                            specular=(0.0, 0.4), shadow_probability=0.6),
    colour=ColourSensor(exposure=(0.75, 1.25), white_balance=(0.9, 1.1), gamma=(0.85, 1.2), vignetting=0.4,
                        blur=0.7, blur_sigma=(0.4, 1.1), noise_sigma=(1.0, 5.0)),
    depth_model="kinect",
    depth_first=True,
    label=replace(_V2.label, candidates=48, max_candidates_per_view=48),
    detailed_manifest=True,
)
PRESETS["wrist"] = replace(
    _V2,
    name="wrist",
    objects_per_scene=(1, 4),
    keep_radius=0.3,
    floor_size=4.0,
    floor_cell=0.1,
    clutter=False,
    camera=CameraConfig(distance=(0.15, 0.5), vertical=False, max_tilt_deg=30.0, focal_jitter=(0.52, 0.58),
                        aspect_jitter=(0.997, 1.003), principal="centre", principal_jitter_px=10.0, target_jitter=0.02),
    depth_sensor=D405,
)
