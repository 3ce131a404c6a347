from .server import *
from .client import Client
