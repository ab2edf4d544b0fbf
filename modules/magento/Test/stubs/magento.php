<?php

// Minimal stand-ins for the Magento and PSR classes the module touches, with their real names and
// signatures, so PHPUnit runs without a Magento installation. Only what the module calls.

declare(strict_types=1);

namespace Psr\Log {
    interface LoggerInterface
    {
        public function emergency(string|\Stringable $message, array $context = []): void;
        public function alert(string|\Stringable $message, array $context = []): void;
        public function critical(string|\Stringable $message, array $context = []): void;
        public function error(string|\Stringable $message, array $context = []): void;
        public function warning(string|\Stringable $message, array $context = []): void;
        public function notice(string|\Stringable $message, array $context = []): void;
        public function info(string|\Stringable $message, array $context = []): void;
        public function debug(string|\Stringable $message, array $context = []): void;
        public function log($level, string|\Stringable $message, array $context = []): void;
    }
}

namespace Magento\Framework {
    /** Data container with magic getFoo()/setFoo() over snake_case keys, as Magento's. */
    class DataObject
    {
        /** @param array<string, mixed> $data */
        public function __construct(protected array $_data = [])
        {
        }

        public function getData($key = '', $index = null)
        {
            return $key === '' ? $this->_data : ($this->_data[$key] ?? null);
        }

        public function setData($key, $value = null)
        {
            $this->_data[$key] = $value;
            return $this;
        }

        public function __call($method, $args)
        {
            $key = strtolower((string) preg_replace('/(.)([A-Z])/', '$1_$2', substr($method, 3)));
            return match (substr($method, 0, 3)) {
                'get' => $this->getData($key),
                'set' => $this->setData($key, $args[0] ?? null),
                'uns' => $this,
                default => throw new \BadMethodCallException($method),
            };
        }
    }

    class Event extends DataObject
    {
    }
}

namespace Magento\Framework\Event {
    class Observer extends \Magento\Framework\DataObject
    {
        public function getEvent()
        {
            return $this->_data['event'];
        }
    }

    interface ObserverInterface
    {
        public function execute(Observer $observer);
    }
}

namespace Magento\Framework\Model\ResourceModel {
    /** A connection's transaction: commit callbacks run at the outermost commit, rollback drops them. */
    abstract class AbstractResource
    {
        /** @var list<callable> */
        private array $callbacks = [];
        private int $level = 0;

        public function beginTransaction()
        {
            $this->level++;
            return $this;
        }

        public function addCommitCallback($callback)
        {
            $this->callbacks[] = $callback;
            return $this;
        }

        public function commit()
        {
            $this->level--;
            if ($this->level === 0) {
                $callbacks = $this->callbacks;
                $this->callbacks = [];
                foreach ($callbacks as $callback) {
                    try {
                        call_user_func($callback);
                    } catch (\Exception $e) {
                        // Magento logs it as critical and goes on
                    }
                }
            }
            return $this;
        }

        public function rollBack()
        {
            $this->level = 0;
            $this->callbacks = [];
            return $this;
        }
    }
}

namespace Magento\Framework\Model {
    use Magento\Framework\Model\ResourceModel\AbstractResource;

    class AbstractModel extends \Magento\Framework\DataObject
    {
        private ?bool $isObjectNew = null;

        /**
         * @param array<string, mixed> $data
         * @param array<string, mixed> $origData as loaded from the database (empty: never loaded)
         */
        public function __construct(
            private ?AbstractResource $resource = null,
            array $data = [],
            private array $origData = [],
        ) {
            parent::__construct($data);
        }

        public function getId()
        {
            return $this->_data['entity_id'] ?? null;
        }

        public function getResource()
        {
            return $this->resource;
        }

        public function isObjectNew($flag = null)
        {
            if ($flag !== null) {
                $this->isObjectNew = $flag;
            }
            return $this->isObjectNew ?? !$this->getId();
        }

        public function getOrigData($key = null)
        {
            return $key === null ? $this->origData : ($this->origData[$key] ?? null);
        }
    }
}

namespace Magento\Framework\App\Config {
    interface ScopeConfigInterface
    {
        public const SCOPE_TYPE_DEFAULT = 'default';

        public function getValue($path, $scopeType = ScopeConfigInterface::SCOPE_TYPE_DEFAULT, $scopeCode = null);

        public function isSetFlag($path, $scopeType = ScopeConfigInterface::SCOPE_TYPE_DEFAULT, $scopeCode = null);
    }
}

namespace Magento\Framework\App {
    interface ProductMetadataInterface
    {
        public function getVersion();
    }
}

namespace Magento\Framework\Encryption {
    interface EncryptorInterface
    {
        public function encrypt($data);

        public function decrypt($data);
    }
}
