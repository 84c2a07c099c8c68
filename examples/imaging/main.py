# The imaging half of the worked example of docs/imaging.md: this script is
# "PythonMainScript", so it runs in the main interpreter, where numpy and Pillow
# load. Only the main interpreter serves its route.
#   curl http://127.0.0.1:8042/example/thumbnail/<instance id> > thumbnail.png
import io

import numpy
import pydicom
from PIL import Image

import orthanc


def Thumbnail(output, uri, **request):
    instance = request["groups"][0]
    dataset = pydicom.dcmread(io.BytesIO(orthanc.GetDicomForInstance(instance)))
    pixels = dataset.pixel_array.astype(numpy.float64)
    if pixels.ndim == 3 and dataset.get("SamplesPerPixel", 1) == 1:
        pixels = pixels[0]  # first frame
    low, high = pixels.min(), pixels.max()
    scaled = numpy.round((pixels - low) * 255.0 / max(high - low, 1.0)).astype(numpy.uint8)
    image = Image.fromarray(scaled)
    image.thumbnail((256, 256))
    png = io.BytesIO()
    image.save(png, format="PNG")
    output.AnswerBuffer(png.getvalue(), "image/png")


orthanc.RegisterRestCallback("/example/thumbnail/(.*)", Thumbnail)
