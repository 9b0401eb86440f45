"""ament_python package: installs the Python package, launch/config files and the ament marker."""

import ast
from glob import glob
from pathlib import Path

from setuptools import find_namespace_packages, setup

package_name = 'zoedepth_ros'


def optional_extras() -> dict[str, list[str]]:
    """``EXTRAS`` of zoedepth_ros/extras.py, read from the source (importing the package would
    need its dependencies): the extras and the errors that name them stay one list."""
    source = Path(__file__).resolve().parent / package_name / 'extras.py'
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, 'id', '') == 'EXTRAS':
            return {name: list(pins) for name, pins in ast.literal_eval(node.value).items()}
    raise RuntimeError(f'no EXTRAS in {source}')


setup(
    name=package_name,
    version='0.1.0',
    # Namespace discovery: the asset folders (no __init__.py) are packages of data files too,
    # so setuptools installs them without a warning per folder.
    packages=find_namespace_packages(include=[package_name, f'{package_name}.*'],
                                     exclude=['*.__pycache__']),
    # explicit levels: the setuptools of Ubuntu 22.04 (59.6) does not expand '**'
    package_data={package_name: ['assets/*/*', 'assets/*/*/*', 'assets/*/*/*/*']},
    include_package_data=True,
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{package_name}']),
        (f'share/{package_name}', ['package.xml']),
        (f'share/{package_name}/launch', glob('launch/*.launch.py')),
        (f'share/{package_name}/config', glob('config/*.yaml')),
        (f'share/{package_name}/config/model', glob('config/model/*.yaml')),
        (f'share/{package_name}/config/train', glob('config/train/*.yaml')),
        (f'share/{package_name}/config/eval', glob('config/eval/*.yaml')),
    ],
    install_requires=['setuptools'],
    # test: colcon test runs pytest, not `setup.py test`; synth, train: optional features
    extras_require={'test': ['pytest'], **optional_extras()},
    zip_safe=False,
    maintainer='zoedepth_ros developers',
    maintainer_email='zoedepth-ros@example.org',
    description='Monocular metric depth (ZoeDepth) for ROS 2: node, offline tools, training.',
    license='MIT',
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'zoedepth = zoedepth_ros.cli.main:console_main',
            'depth_node = zoedepth_ros.ros.executables:depth_node',
            'depth_lifecycle_node = zoedepth_ros.ros.executables:depth_lifecycle_node',
        ],
    },
)
